// The manage page: the server shows the booking or class seat and the deadlines; this adds
// cancelling (with an optional reason) and, for an appointment, moving to another time of the
// same service, through /api/v1/manage/{token}. A seat is not moved: the patient cancels and
// books another session.

import {
  api, el, show, focusHeading, clinic, whenText, longWhen, zoneName, showErrors, notice,
  phoneLink, calendarLink,
} from './common.js';
import { slotPicker } from './slots.js';
import { itemOf, noun } from './booked.js';

const token = decodeURIComponent(window.location.pathname.split('/').pop() || '');
const base = `/api/v1/manage/${encodeURIComponent(token)}`;
const app = document.getElementById('app');
const panel = document.getElementById('panel');
const noticeBox = document.getElementById('notice');
const actions = document.getElementById('actions');
const cancelStart = document.getElementById('cancel-start');
const rescheduleStart = document.getElementById('reschedule-start');

const STATUS = {
  confirmed: 'Confirmed', cancelled: 'Cancelled', arrived: 'Arrived', completed: 'Completed',
  attended: 'Attended', no_show: 'Missed',
};

let info = null;
let managed = null; // the manage answer: {booking | seat, can_cancel, can_reschedule?, cancel_deadline}
let item = null; // its booking or seat, in one shape (booked.js)

function renderSummary(booking) {
  const tz = info.time_zone;
  item = booking;
  document.getElementById('summary-reference').textContent = booking.reference;
  document.getElementById('summary-service').textContent = booking.service.name;
  document.getElementById('summary-practitioner').textContent = booking.practitioner.name;
  document.getElementById('summary-when').textContent = whenText(booking.start, tz);
  const cancelled = booking.status === 'cancelled';
  const status = document.getElementById('summary-status');
  status.replaceChildren(el('span', { class: cancelled ? 'tag tag-cancelled' : 'tag' },
    STATUS[booking.status] || booking.status));
  if (cancelled) {
    document.getElementById('heading').textContent = booking.kind === 'seat' ? 'Your cancelled place' : 'Your cancelled booking';
  }
}

function updateActions() {
  const canCancel = managed.can_cancel;
  const canMove = Boolean(managed.can_reschedule) && item.kind !== 'seat';
  if (!actions) return;
  actions.hidden = !(canCancel || canMove);
  if (cancelStart) cancelStart.hidden = !canCancel;
  if (rescheduleStart) rescheduleStart.hidden = !canMove;
}

/** What the patient may still do, from the manage answer (after a change moved the deadline). */
function renderPolicy() {
  const policy = document.getElementById('policy');
  const tz = info.time_zone;
  const deadline = `${longWhen(managed.cancel_deadline, tz)} (${zoneName(tz, managed.cancel_deadline)})`;
  if (managed.can_cancel && managed.can_reschedule) {
    policy.replaceChildren(el('p', {}, 'You can change the time or cancel online until ', el('strong', {}, deadline), '.'));
  } else if (item.status === 'confirmed') {
    policy.replaceChildren(
      el('p', {}, managed.can_cancel ? 'You can cancel online until ' : 'It is now too close to your appointment to change it online.',
        managed.can_cancel ? el('strong', {}, deadline) : ''),
      el('p', { class: 'callout' }, 'To change or cancel now, please call us on ', phoneLink(info.phone), '.'));
  }
}

function tooLate(detail) {
  const policy = document.getElementById('policy');
  policy.replaceChildren(el('p', { class: 'callout' }, detail || `This ${item.kind === 'seat' ? 'place' : 'booking'} can no longer be changed online. Please call us on `,
    detail ? '' : phoneLink(info.phone)));
  managed.can_cancel = false;
  managed.can_reschedule = false;
  updateActions();
}

// ---- Cancelling.

function startCancel() {
  if (actions) actions.hidden = true;
  const errorBox = el('div');
  const seat = item.kind === 'seat';
  const form = el('form', { novalidate: true },
    el('h2', {}, seat ? 'Cancel your place?' : 'Cancel this booking?'),
    el('p', {}, `${item.service.name}, ${longWhen(item.start, info.time_zone)} (${zoneName(info.time_zone, item.start)}).`),
    seat ? el('p', {}, 'Your place will be offered to someone on the waitlist. To come to another session, book it after cancelling.') : null,
    el('div', { class: 'field', id: 'field-reason' },
      el('label', { for: 'reason' }, 'Why are you cancelling? (optional)'),
      el('p', { class: 'hint', id: 'reason-hint' }, 'This helps us, but you do not have to say.'),
      el('textarea', { id: 'reason', name: 'reason', rows: 3, maxlength: 500, 'aria-describedby': 'reason-hint' })),
    el('div', { class: 'actions' },
      el('button', { type: 'submit', class: 'button button-warning', id: 'confirm-cancel' }, seat ? 'Yes, cancel my place' : 'Yes, cancel my booking'),
      el('button', { type: 'button', class: 'button button-secondary', onclick: closePanel }, 'No, keep it')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('#confirm-cancel');
    if (button.disabled) return;
    button.disabled = true;
    const reason = form.querySelector('#reason').value.trim();
    const resp = await api(`${base}/cancel`, { method: 'POST', body: reason ? { reason } : {} });
    button.disabled = false;
    if (resp.status === 200) {
      Object.assign(managed, resp.body, { can_cancel: false, can_reschedule: false });
      renderSummary(itemOf(resp.body));
      document.getElementById('policy').replaceChildren(el('p', {}, 'You can ',
        el('a', { href: '/book' }, seat ? 'book another session' : 'book another appointment'), ' at any time.'));
      show(panel);
      if (actions) actions.hidden = true;
      notice(noticeBox, `Your ${seat ? 'place' : 'booking'} is cancelled. We have sent you an email to confirm.`, 'success');
      focusHeading(app);
    } else if (resp.body?.code === 'too_late_to_change') {
      closePanel();
      tooLate(resp.body.detail);
      notice(noticeBox, resp.body.detail, 'error');
    } else {
      showErrors(errorBox, form, [{ id: resp.body?.errors?.length ? 'reason' : null, message: resp.body?.detail || `We could not cancel the ${noun(item)}. Please try again or call us.` }]);
    }
  });
  show(panel, errorBox, form);
  focusHeading(panel);
}

// ---- Moving to another time.

function startReschedule() {
  if (actions) actions.hidden = true;
  const b = item;
  const holder = el('div', { class: 'picker' });
  show(panel, holder);
  const picker = slotPicker({
    root: holder,
    tz: info.time_zone,
    serviceId: b.service.id,
    practitionerId: b.practitioner.id,
    maxAdvanceDays: info.policy.max_advance_days,
    caption: `Change the time: ${b.service.name} with ${b.practitioner.name}`,
    onBack: closePanel,
    backLabel: 'Keep the current time',
    onPick: (slot) => confirmMove(holder, picker, slot),
  });
}

function confirmMove(holder, picker, slot) {
  const tz = info.time_zone;
  const b = item;
  const errorBox = el('div');
  const button = el('button', { type: 'button', class: 'button', id: 'confirm-move' }, 'Confirm the new time');
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    const resp = await api(`${base}/reschedule`, { method: 'POST', body: { start: slot.start, practitioner_id: slot.practitioner_id } });
    button.disabled = false;
    if (resp.status === 200) {
      managed.booking = resp.body.booking;
      renderSummary(itemOf(resp.body));
      show(panel, el('p', { class: 'actions' }, calendarLink(item, info, window.location.href)));
      const again = await api(base);
      if (again.status === 200) {
        managed = again.body;
        renderPolicy();
      }
      updateActions();
      notice(noticeBox, `Your booking has moved to ${whenText(resp.body.booking.start, tz)}. We have emailed you the new time.`, 'success');
      focusHeading(app);
    } else if (resp.status === 409 || resp.body?.code === 'outside_availability') {
      picker.refresh('Sorry, that time has just been taken. Please choose another time – these are the times still free.');
    } else if (resp.body?.code === 'too_late_to_change') {
      closePanel();
      tooLate(resp.body.detail);
      notice(noticeBox, resp.body.detail, 'error');
    } else {
      showErrors(errorBox, null, [{ id: null, message: resp.body?.detail || 'We could not move the booking. Please try again or call us.' }]);
    }
  });
  show(holder,
    el('h2', {}, 'Confirm the new time'),
    errorBox,
    el('dl', { class: 'summary' },
      el('div', {}, el('dt', {}, 'From'), el('dd', {}, whenText(b.start, tz))),
      el('div', {}, el('dt', {}, 'To'), el('dd', {}, whenText(slot.start, tz)))),
    el('div', { class: 'actions' }, button,
      el('button', { type: 'button', class: 'button button-secondary', onclick: () => picker.refresh() }, 'Choose another time')));
  focusHeading(holder);
}

function closePanel() {
  show(panel);
  updateActions();
  (managed.can_reschedule ? rescheduleStart : cancelStart)?.focus();
}

async function start() {
  const [clinicInfo, resp] = await Promise.all([clinic(), api(base)]);
  if (!clinicInfo || resp.status !== 200) return; // the server-rendered page still says what it can
  info = clinicInfo;
  managed = resp.body;
  renderSummary(itemOf(managed));
  if (actions) {
    cancelStart?.addEventListener('click', startCancel);
    rescheduleStart?.addEventListener('click', startReschedule);
    updateActions();
  }
}

start();
