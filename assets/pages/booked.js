// What an appointment and a seat in a class have in common as the patient sees them, and the
// confirmation shown once either is made: on the booking page, and after claiming a waitlist
// offer (which answers like a booking or a seat does).

import { el, show, focusHeading, whenText, calendarLink, phoneLink } from './common.js';

/**
 * One shape for both: {kind, id, reference, status, service, practitioner, start, end,
 * patient}. A seat's calendar UID is made from its id, as in its emailed invitation.
 */
export function fromSeat(seat) {
  return {
    kind: 'seat',
    id: seat.id,
    reference: seat.reference,
    status: seat.status,
    service: seat.class.service,
    practitioner: seat.class.practitioner,
    start: seat.class.start,
    end: seat.class.end,
    patient: seat.patient,
  };
}

export function fromBooking(booking) {
  return { kind: 'booking', ...booking };
}

/** The item of a `{booking}` or `{seat}` answer (created, managed or claimed). */
export function itemOf(body) {
  if (body?.seat) return fromSeat(body.seat);
  if (body?.booking) return fromBooking(body.booking);
  return null;
}

/** "class" or "appointment", for sentences. */
export function noun(item) {
  return item.kind === 'seat' ? 'class' : 'appointment';
}

/** When the patient can still change it online, said up front. */
function changeNote(item, clinicInfo) {
  const hours = clinicInfo.policy.cancel_notice_hours;
  const soon = new Date(item.start).getTime() - Date.now() < hours * 3600 * 1000;
  const what = noun(item);
  if (soon) {
    return el('p', {}, `Your ${what} is less than ${hours} hours away, so it can no longer be changed online. To change or cancel it, please call us on `,
      phoneLink(clinicInfo.phone), '.');
  }
  if (item.kind === 'seat') {
    return el('p', {}, `You can cancel your place online up to ${hours} hours before the class; after that, please call us on `,
      phoneLink(clinicInfo.phone), '. To move to another session, cancel and book another session.');
  }
  return el('p', {}, `You can change or cancel online up to ${hours} hours before your appointment. After that, please call us on `,
    phoneLink(clinicInfo.phone), '.');
}

/**
 * Renders the confirmation of `created` ({booking|seat, manage_url}) into `root`.
 * options: {embedded, heading, lead, bookAgainHref}
 */
export function showConfirmation(root, created, clinicInfo, options = {}) {
  const item = itemOf(created);
  const tz = clinicInfo.time_zone;
  const seat = item.kind === 'seat';
  const heading = options.heading || (seat ? 'Place booked' : 'Booking confirmed');
  document.title = `${heading} – ${clinicInfo.name}`;
  show(root,
    el('div', { class: 'panel-confirmation' },
      el('h1', {}, heading),
      el('p', {}, 'Your reference is'),
      el('p', { class: 'reference', id: 'reference' }, item.reference)),
    options.lead ? el('p', {}, options.lead) : null,
    el('dl', { class: 'summary' },
      el('div', {}, el('dt', {}, seat ? 'Class' : 'Appointment'), el('dd', {}, item.service.name)),
      el('div', {}, el('dt', {}, 'With'), el('dd', {}, item.practitioner.name)),
      el('div', {}, el('dt', {}, 'When'), el('dd', {}, whenText(item.start, tz))),
      el('div', {}, el('dt', {}, 'Where'), el('dd', {}, `${clinicInfo.name}, ${clinicInfo.address}`))),
    el('h2', {}, 'What happens next'),
    el('p', {}, item.patient?.email
      ? `We have sent a confirmation to ${item.patient.email} with a calendar invitation and a link to ${seat ? 'cancel your place' : 'change or cancel your booking'}.`
      : `We have emailed you a confirmation with a calendar invitation and a link to ${seat ? 'cancel your place' : 'change or cancel your booking'}.`),
    changeNote(item, clinicInfo),
    el('p', { class: 'actions' }, calendarLink(item, clinicInfo, created.manage_url),
      el('a', {
        class: 'button button-secondary',
        href: created.manage_url,
        target: options.embedded ? '_blank' : null,
        rel: options.embedded ? 'noopener' : null,
      }, seat ? 'View or cancel this place' : 'View or change this booking')),
    el('p', {}, el('a', { href: options.bookAgainHref || '/book' }, seat ? 'Book another class or appointment' : 'Book another appointment')));
  focusHeading(root);
  return item;
}

/** The place a waitlist offer holds ({class} or {slot}) in the same shape, or null. */
export function placeOf(offer) {
  const p = offer?.class || offer?.slot;
  if (!p) return null;
  return {
    kind: offer.class ? 'seat' : 'booking',
    service: p.service,
    practitioner: p.practitioner,
    start: p.start,
    end: p.end,
  };
}

/** Summary rows for a place: what, with whom, when. */
export function placeRows(place, tz) {
  return [
    el('div', {}, el('dt', {}, place.kind === 'seat' ? 'Class' : 'Appointment'), el('dd', {}, place.service.name)),
    el('div', {}, el('dt', {}, 'With'), el('dd', {}, place.practitioner.name)),
    el('div', {}, el('dt', {}, 'When'), el('dd', {}, whenText(place.start, tz))),
  ];
}
