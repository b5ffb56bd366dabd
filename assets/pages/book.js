// The booking page: service → practitioner or first available → day → time → details →
// confirmation, one question per step, through the public API only.

import {
  api, el, show, focusHeading, clinic, price, whenText, showErrors, clearErrors, page,
  postToParent, calendarLink, phoneLink,
} from './common.js';
import { slotPicker } from './slots.js';

const app = document.getElementById('app');

const CATEGORIES = {
  physio: 'Physiotherapy',
  sports_massage: 'Sports massage and sports therapy',
  personal_training: 'Personal training',
  pilates: 'Pilates',
  other: 'Other services',
};

const state = {
  clinic: null,
  services: [],
  practitioners: [],
  service: null,
  practitioner: null, // null = first available
  slot: null,
  details: {},
  attempt: null, // {key, body} of the last submission, so a retry of the same body books once
  picker: null,
};

const TOTAL_STEPS = 5;
const caption = (n) => `Step ${n} of ${TOTAL_STEPS}`;

function setTitle(text) {
  document.title = `${text} – ${state.clinic?.name || 'Book'}`;
}

function radio(name, value, labelText, hint, checked) {
  const id = `${name}-${value}`;
  const hintId = hint ? `${id}-hint` : null;
  return el('div', { class: 'radio' },
    el('input', { type: 'radio', id, name, value, checked, 'aria-describedby': hintId }),
    el('label', { for: id }, labelText),
    hint ? el('div', { class: 'hint', id: hintId }, hint) : null);
}

// ---- Step 1: the service.

function chooseService(message) {
  setTitle('Choose a service');
  const form = el('form', { novalidate: true });
  const errorBox = el('div');
  // Categories in a fixed order, each with its services as the clinic lists them.
  const groups = new Map(Object.keys(CATEGORIES).map((c) => [c, []]));
  for (const s of state.services) {
    if (!groups.has(s.category)) groups.set(s.category, []);
    groups.get(s.category).push(s);
  }
  const fieldset = el('fieldset', { class: 'field', id: 'field-service' },
    el('legend', { class: 'visually-hidden' }, 'Service'));
  let firstId = null;
  for (const [category, list] of groups) {
    if (!list.length) continue;
    fieldset.append(el('h2', { class: 'group-heading' }, CATEGORIES[category] || CATEGORIES.other));
    for (const s of list) {
      const r = radio('service', s.slug, s.name,
        `${s.duration_minutes} minutes · ${price(s.price_pence)}. ${s.description}`,
        state.service?.id === s.id);
      firstId = firstId || r.querySelector('input').id;
      fieldset.append(r);
    }
  }
  form.append(fieldset, el('button', { type: 'submit', class: 'button' }, 'Continue'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const chosen = form.querySelector('input[name=service]:checked');
    if (!chosen) {
      showErrors(errorBox, form, [{ id: firstId, message: 'Choose the service you would like to book' }]);
      return;
    }
    state.service = state.services.find((s) => s.slug === chosen.value);
    state.practitioner = null;
    state.slot = null;
    choosePractitioner();
  });
  show(app, el('p', { class: 'caption' }, caption(1)), el('h1', {}, 'Choose a service'),
    message ? el('p', { class: 'notice notice-error', role: 'alert' }, message) : null, errorBox, form);
  focusHeading(app);
}

// ---- Step 2: a practitioner, or whoever is free first.

function offering(service) {
  return state.practitioners.filter((p) => service.practitioner_ids.includes(p.id));
}

function choosePractitioner() {
  const team = offering(state.service);
  if (team.length <= 1) {
    // Nobody to choose between.
    state.practitioner = team[0] || null;
    chooseTime();
    return;
  }
  setTitle('Who would you like to see?');
  const form = el('form', { novalidate: true });
  const fieldset = el('fieldset', { class: 'field' },
    el('legend', { class: 'visually-hidden' }, 'Practitioner'),
    radio('practitioner', 'any', 'First available', 'The earliest free time with anyone who offers this service.', !state.practitioner));
  for (const p of team) {
    fieldset.append(radio('practitioner', p.slug, p.name, `${p.title}. ${p.bio}`, state.practitioner?.id === p.id));
  }
  form.append(fieldset, el('button', { type: 'submit', class: 'button' }, 'Continue'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const chosen = form.querySelector('input[name=practitioner]:checked');
    state.practitioner = chosen && chosen.value !== 'any' ? team.find((p) => p.slug === chosen.value) : null;
    state.slot = null;
    chooseTime();
  });
  show(app, el('p', { class: 'caption' }, `${caption(2)} · ${state.service.name}`),
    el('h1', {}, 'Who would you like to see?'), form,
    el('button', { type: 'button', class: 'link-button back', onclick: () => chooseService() }, 'Back'));
  focusHeading(app);
}

// ---- Steps 3 and 4: a day, then a time.

function chooseTime(message) {
  setTitle('Choose a time');
  const who = state.practitioner ? state.practitioner.name : 'first available';
  state.picker = slotPicker({
    root: app,
    tz: state.clinic.time_zone,
    serviceId: state.service.id,
    practitionerId: state.practitioner?.id || null,
    maxAdvanceDays: state.clinic.policy.max_advance_days,
    caption: `${caption(3)} · ${state.service.name}, ${who}`,
    message,
    onBack: () => (offering(state.service).length > 1 ? choosePractitioner() : chooseService()),
    onPick: (slot) => {
      state.slot = slot;
      details();
    },
  });
}

// ---- Step 5: the patient's details and consent.

function field(id, labelText, input, hint) {
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  return el('div', { class: 'field', id: `field-${id}` },
    el('label', { for: id }, labelText), hint ? el('p', { class: 'hint', id: hintId }, hint) : null, input);
}

function checkbox(id, labelText, checked) {
  return el('div', { class: 'field', id: `field-${id}` }, el('div', { class: 'checkbox' },
    el('input', { type: 'checkbox', id, name: id, checked }), el('label', { for: id }, labelText)));
}

/** Where the API's field names live in the form. */
const FIELD_IDS = {
  'patient.name': 'name', 'patient.email': 'email', 'patient.phone': 'phone',
  notes: 'notes', 'consent.privacy': 'privacy',
};

function details() {
  setTitle('Your details');
  const tz = state.clinic.time_zone;
  const d = state.details;
  const errorBox = el('div');
  const form = el('form', { novalidate: true, id: 'details-form' },
    field('name', 'Full name', el('input', { id: 'name', name: 'name', type: 'text', autocomplete: 'name', value: d.name || '', maxlength: 200 })),
    field('email', 'Email address', el('input', { id: 'email', name: 'email', type: 'email', autocomplete: 'email', spellcheck: 'false', value: d.email || '', maxlength: 254 }),
      'We will send your confirmation and a link to change or cancel here.'),
    field('phone', 'Phone number (optional)', el('input', { id: 'phone', name: 'phone', type: 'tel', autocomplete: 'tel', value: d.phone || '', maxlength: 32 }),
      'So we can reach you if something changes on the day.'),
    field('notes', 'Anything we should know? (optional)', el('textarea', { id: 'notes', name: 'notes', rows: 4, maxlength: 2000 }, d.notes || ''),
      'For example the injury or what you would like to work on.'),
    checkbox('privacy', `I agree that ${state.clinic.name} may keep my details to manage this booking`, d.privacy),
    checkbox('marketing', 'Send me occasional news and offers (optional)', d.marketing),
    el('button', { type: 'submit', class: 'button', id: 'book-button' }, 'Confirm booking'));
  const summary = el('div', { class: 'chosen' },
    el('p', {}, el('strong', {}, state.service.name), ` with ${state.practitioner ? state.practitioner.name : 'the first available practitioner'}`),
    el('p', {}, whenText(state.slot.start, tz)),
    el('button', { type: 'button', class: 'link-button', onclick: () => { keep(form); chooseTime(); } }, 'Change the time'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit(form, errorBox);
  });
  show(app, el('p', { class: 'caption' }, caption(4)), el('h1', {}, 'Your details'), summary, errorBox, form,
    el('button', { type: 'button', class: 'link-button back', onclick: () => { keep(form); chooseTime(); } }, 'Back'));
  focusHeading(app);
}

function keep(form) {
  const v = (id) => form.querySelector(`#${id}`);
  state.details = {
    name: v('name').value, email: v('email').value, phone: v('phone').value,
    notes: v('notes').value, privacy: v('privacy').checked, marketing: v('marketing').checked,
  };
}

function localErrors(d) {
  const errors = [];
  if (!d.name.trim()) errors.push({ id: 'name', message: 'Enter your full name' });
  if (!d.email.trim()) errors.push({ id: 'email', message: 'Enter your email address' });
  else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(d.email.trim())) {
    errors.push({ id: 'email', message: 'Enter an email address in the correct format, like name@example.com' });
  }
  if (!d.privacy) errors.push({ id: 'privacy', message: 'Tick the box to agree that we may keep your details' });
  return errors;
}

let submitting = false;

async function submit(form, errorBox) {
  if (submitting) return; // a second click while the first is on its way books nothing more
  keep(form);
  const d = state.details;
  const errors = localErrors(d);
  if (errors.length) {
    showErrors(errorBox, form, errors);
    return;
  }
  clearErrors(errorBox, form);
  const body = {
    service_id: state.service.id,
    start: state.slot.start,
    patient: { name: d.name.trim(), email: d.email.trim(), ...(d.phone.trim() ? { phone: d.phone.trim() } : {}) },
    ...(d.notes.trim() ? { notes: d.notes.trim() } : {}),
    consent: { privacy: true, marketing: Boolean(d.marketing) },
  };
  if (state.practitioner) body.practitioner_id = state.practitioner.id;
  const text = JSON.stringify(body);
  // One key per booking attempt: the same attempt sent again (a retry after a lost answer)
  // replays the first answer instead of booking twice.
  if (!state.attempt || state.attempt.body !== text) {
    state.attempt = { key: crypto.randomUUID(), body: text };
  }
  const button = form.querySelector('#book-button');
  submitting = true;
  button.disabled = true;
  button.textContent = 'Booking…';
  const resp = await api('/api/v1/bookings', { method: 'POST', body, headers: { 'Idempotency-Key': state.attempt.key } });
  submitting = false;
  button.disabled = false;
  button.textContent = 'Confirm booking';
  const code = resp.body?.code;
  if (resp.status === 201) {
    state.attempt = null;
    confirmation(resp.body);
  } else if (resp.status === 409 || code === 'outside_availability') {
    state.slot = null;
    state.attempt = null;
    // Back to the same day's times, fetched again, with the reason said plainly.
    state.picker.refresh('Sorry, that time has just been taken by someone else. Please choose another time – these are the times still free.');
  } else if (code === 'validation_failed') {
    const list = (resp.body.errors || []).map((err) => ({
      id: FIELD_IDS[err.field] || null,
      message: `${labelFor(err.field)} ${err.message}`,
    }));
    showErrors(errorBox, form, list.length ? list : [{ id: null, message: resp.body.detail }]);
  } else if (resp.status === 429) {
    showErrors(errorBox, form, [{ id: null, message: 'Too many attempts in a short time. Please wait a minute and try again.' }]);
  } else if (resp.status === 0) {
    showErrors(errorBox, form, [{ id: null, message: 'We could not reach the clinic. Check your connection and press Confirm booking again – you will not be booked twice.' }]);
  } else {
    showErrors(errorBox, form, [{ id: null, message: resp.body?.detail || 'Something went wrong. Please try again, or call the clinic.' }]);
  }
}

function labelFor(fieldName) {
  return {
    'patient.name': 'Your name', 'patient.email': 'Your email address', 'patient.phone': 'Your phone number',
    notes: 'Your notes', 'consent.privacy': 'Your agreement',
  }[fieldName] || 'This';
}

// ---- The confirmation.

/** When the patient can still change the booking online, said up front. */
function changeNote(b) {
  const hours = state.clinic.policy.cancel_notice_hours;
  const soon = new Date(b.start).getTime() - Date.now() < hours * 3600 * 1000;
  return soon
    ? el('p', {}, `Your appointment is less than ${hours} hours away, so it can no longer be changed online. To change or cancel it, please call us on `,
      phoneLink(state.clinic.phone), '.')
    : el('p', {}, `You can change or cancel online up to ${hours} hours before your appointment. After that, please call us on `,
      phoneLink(state.clinic.phone), '.');
}

function confirmation(created) {
  setTitle('Booking confirmed');
  const b = created.booking;
  const tz = state.clinic.time_zone;
  show(app,
    el('div', { class: 'panel-confirmation' },
      el('h1', {}, 'Booking confirmed'),
      el('p', {}, 'Your reference is'),
      el('p', { class: 'reference', id: 'reference' }, b.reference)),
    el('dl', { class: 'summary' },
      el('div', {}, el('dt', {}, 'Appointment'), el('dd', {}, b.service.name)),
      el('div', {}, el('dt', {}, 'With'), el('dd', {}, b.practitioner.name)),
      el('div', {}, el('dt', {}, 'When'), el('dd', {}, whenText(b.start, tz))),
      el('div', {}, el('dt', {}, 'Where'), el('dd', {}, `${state.clinic.name}, ${state.clinic.address}`))),
    el('h2', {}, 'What happens next'),
    el('p', {}, `We have sent a confirmation to ${b.patient.email} with a calendar invitation and a link to change or cancel your booking.`),
    changeNote(b),
    el('p', { class: 'actions' }, calendarLink(b, state.clinic, created.manage_url),
      el('a', { class: 'button button-secondary', href: created.manage_url, target: page.embedded ? '_blank' : null, rel: page.embedded ? 'noopener' : null }, 'View or change this booking')),
    el('p', {}, el('a', { href: `/book${page.embedded ? '?embed=1' : ''}` }, 'Book another appointment')));
  focusHeading(app);
  postToParent({ type: 'frontdesk:booked', reference: b.reference });
}

// ---- Start: the catalogue, then the step a deep link points at.

async function start() {
  const [info, services, practitioners] = await Promise.all([
    clinic(), api('/api/v1/services'), api('/api/v1/practitioners'),
  ]);
  if (!info || services.status !== 200 || practitioners.status !== 200) {
    show(app, el('h1', {}, 'Sorry, there is a problem'),
      el('p', {}, 'Online booking is not available right now. Please try again later or call us.'));
    focusHeading(app);
    return;
  }
  state.clinic = info;
  state.services = services.body;
  state.practitioners = practitioners.body;
  if (page.service) {
    const s = state.services.find((x) => x.slug === page.service);
    if (!s) {
      chooseService('We could not find that service. Please choose one below.');
      return;
    }
    state.service = s;
    if (page.practitioner) {
      const p = offering(s).find((x) => x.slug === page.practitioner);
      if (p) {
        state.practitioner = p;
        chooseTime();
        return;
      }
    }
    choosePractitioner();
    return;
  }
  chooseService();
}

start();
