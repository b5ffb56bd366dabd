// The booking page, one question per step, through the public API only. A one-to-one service:
// practitioner or first available → day → time → details → confirmation; a day without times
// offers its waitlist. A class: the timetable → details → confirmation; a full class offers
// its waitlist.

import {
  api, el, show, focusHeading, clinic, price, whenText, showErrors, clearErrors, page,
  postToParent, dayLabel, zoneName,
} from './common.js';
import { slotPicker } from './slots.js';
import { classTimetable } from './timetable.js';
import { chooseWindow, showJoined } from './join.js';
import { detailsForm, readDetails, detailErrors, patientBody, fieldErrors } from './patient.js';
import { showConfirmation } from './booked.js';

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
  // What is being booked: {kind: 'slot', slot} | {kind: 'class', session} and, for the
  // waitlist, {kind: 'wait-class', session} | {kind: 'wait-day', day, earliest, latest}.
  choice: null,
  details: {},
  attempt: null, // {key, body} of the last submission, so a retry of the same body books once
  picker: null, // the slot picker or the timetable, to refresh after a place was taken
};

/** A service with more than one place is a class, booked by seats from its timetable. */
const isClass = (service) => (service.capacity ?? 1) > 1;

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
      const size = isClass(s) ? ` · group class, up to ${s.capacity} people` : '';
      const r = radio('service', s.slug, s.name,
        `${s.duration_minutes} minutes · ${price(s.price_pence)}${size}. ${s.description}`,
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
    state.choice = null;
    if (isClass(state.service)) chooseClass();
    else choosePractitioner();
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
    state.choice = null;
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
      state.choice = { kind: 'slot', slot };
      details();
    },
    onEmptyDay: (day) => waitForDay(day),
  });
}

// ---- The class timetable (services with more than one place), and its waitlist.

function chooseClass(message) {
  setTitle('Choose a class');
  state.picker = classTimetable({
    root: app,
    tz: state.clinic.time_zone,
    serviceId: state.service.id,
    practitionerId: state.practitioner?.id || null,
    maxAdvanceDays: state.clinic.policy.max_advance_days,
    minNoticeMinutes: state.clinic.policy.min_notice_minutes,
    caption: `Step 2 of 3 · ${state.service.name}`,
    message,
    onBack: () => chooseService(),
    onPick: (session) => {
      state.choice = { kind: 'class', session };
      details();
    },
    onWaitlist: (session) => {
      state.choice = { kind: 'wait-class', session };
      details();
    },
  });
}

/** A one-to-one day without free times: when could the patient come, then their details. */
function waitForDay(day) {
  const who = state.practitioner ? `with ${state.practitioner.name}` : 'with anyone';
  const earlier = state.choice?.kind === 'wait-day' && state.choice.day === day ? state.choice : {};
  chooseWindow({
    root: app,
    day,
    tz: state.clinic.time_zone,
    caption: `Waitlist · ${state.service.name}, ${who}`,
    what: `${state.service.name} ${who}`,
    initial: earlier,
    onBack: () => chooseTime(),
    onContinue: ({ earliest, latest }) => {
      state.choice = { kind: 'wait-day', day, earliest, latest };
      details();
    },
  });
}

// ---- The patient's details and consent.

const waiting = () => state.choice.kind.startsWith('wait-');

/** Back to the step the choice was made on. */
function backToChoice() {
  const c = state.choice;
  if (c.kind === 'wait-day') waitForDay(c.day);
  else if (c.kind === 'slot') chooseTime();
  else chooseClass();
}

function chosenSummary(form) {
  const tz = state.clinic.time_zone;
  const c = state.choice;
  const change = (label) => el('button', {
    type: 'button', class: 'link-button', onclick: () => { state.details = readDetails(form); backToChoice(); },
  }, label);
  if (c.kind === 'slot') {
    return el('div', { class: 'chosen' },
      el('p', {}, el('strong', {}, state.service.name), ` with ${state.practitioner ? state.practitioner.name : 'the first available practitioner'}`),
      el('p', {}, whenText(c.slot.start, tz)), change('Change the time'));
  }
  if (c.kind === 'wait-day') {
    const when = c.earliest ? `between ${c.earliest} and ${c.latest}` : 'any time';
    return el('div', { class: 'chosen' },
      el('p', {}, 'Waitlist for ', el('strong', {}, state.service.name), ` with ${state.practitioner ? state.practitioner.name : 'anyone who offers it'}`),
      el('p', {}, `${dayLabel(c.day)}, ${when} (${zoneName(tz)})`), change('Change'));
  }
  return el('div', { class: 'chosen' },
    el('p', {}, c.kind === 'wait-class' ? 'Waitlist for ' : null, el('strong', {}, c.session.service.name), ` with ${c.session.practitioner.name}`),
    el('p', {}, whenText(c.session.start, tz)),
    c.kind === 'wait-class' ? el('p', {}, 'This class is full. If a place frees up, we will email you and hold it for you for a short while.') : null,
    change('Choose another class'));
}

function details() {
  const wait = waiting();
  const title = wait ? 'Join the waitlist: your details' : 'Your details';
  setTitle(title);
  const errorBox = el('div');
  const form = detailsForm({
    details: state.details,
    clinicName: state.clinic.name,
    purpose: wait ? 'my place on the waitlist' : 'this booking',
    emailHint: wait
      ? 'If a place frees up, we will email you here with a link to claim it.'
      : 'We will send your confirmation and a link to change or cancel here.',
    notes: !wait,
    submitLabel: wait ? 'Join the waitlist' : 'Confirm booking',
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit(form, errorBox);
  });
  const step = state.choice.kind === 'slot' ? caption(4) : state.choice.kind === 'class' ? 'Step 3 of 3' : null;
  show(app, step ? el('p', { class: 'caption' }, step) : null, el('h1', {}, wait ? 'Join the waitlist' : 'Your details'),
    chosenSummary(form), errorBox, form,
    el('button', { type: 'button', class: 'link-button back', onclick: () => { state.details = readDetails(form); backToChoice(); } }, 'Back'));
  focusHeading(app);
}

/** The request the current choice makes. */
function request(d) {
  const c = state.choice;
  if (c.kind === 'slot') {
    const body = { service_id: state.service.id, start: c.slot.start, ...patientBody(d) };
    if (state.practitioner) body.practitioner_id = state.practitioner.id;
    return { path: '/api/v1/bookings', body, idempotent: true };
  }
  if (c.kind === 'class') {
    return { path: `/api/v1/classes/${encodeURIComponent(c.session.id)}/seats`, body: patientBody(d), idempotent: true };
  }
  if (c.kind === 'wait-class') {
    return { path: '/api/v1/waitlist', body: { class_id: c.session.id, ...patientBody(d, { notes: false }) } };
  }
  const body = { service_id: state.service.id, from: c.day, to: c.day, ...patientBody(d, { notes: false }) };
  if (state.practitioner) body.practitioner_id = state.practitioner.id;
  if (c.earliest) Object.assign(body, { earliest: c.earliest, latest: c.latest });
  return { path: '/api/v1/waitlist', body };
}

let submitting = false;

async function submit(form, errorBox) {
  if (submitting) return; // a second click while the first is on its way books nothing more
  state.details = readDetails(form);
  const errors = detailErrors(state.details);
  if (errors.length) {
    showErrors(errorBox, form, errors);
    return;
  }
  clearErrors(errorBox, form);
  const { path, body, idempotent } = request(state.details);
  const text = `${path} ${JSON.stringify(body)}`;
  // One key per booking attempt: the same attempt sent again (a retry after a lost answer)
  // replays the first answer instead of booking twice.
  if (!state.attempt || state.attempt.body !== text) {
    state.attempt = { key: crypto.randomUUID(), body: text };
  }
  const button = form.querySelector('#book-button');
  const label = button.textContent;
  submitting = true;
  button.disabled = true;
  button.textContent = waiting() ? 'Joining…' : 'Booking…';
  const headers = idempotent ? { 'Idempotency-Key': state.attempt.key } : {};
  const resp = await api(path, { method: 'POST', body, headers });
  submitting = false;
  button.disabled = false;
  button.textContent = label;
  const code = resp.body?.code;
  const kind = state.choice.kind;
  if (resp.status === 201) {
    state.attempt = null;
    if (waiting()) {
      showJoined(app, {
        clinic: state.clinic, choice: state.choice, service: state.service, practitioner: state.practitioner,
        email: state.details.email.trim(), manageUrl: resp.body.manage_url, embedded: page.embedded,
      });
    }
    else confirmation(resp.body);
  } else if (kind === 'class' && code === 'already_booked') {
    showErrors(errorBox, form, [{ id: null, message: 'You already have a place in this class. Your confirmation email has a link to see or cancel it.' }]);
  } else if (kind === 'class' && (code === 'class_full' || code === 'outside_availability')) {
    state.attempt = null;
    state.picker.refresh(code === 'class_full'
      ? 'Sorry, that class has just filled up. You can join its waitlist, or choose another class.'
      : 'Sorry, that class can no longer be booked online. Please choose another class.');
  } else if (kind === 'slot' && (resp.status === 409 || code === 'outside_availability')) {
    state.attempt = null;
    // Back to the same day's times, fetched again, with the reason said plainly.
    state.picker.refresh('Sorry, that time has just been taken by someone else. Please choose another time – these are the times still free.');
  } else if (code === 'validation_failed') {
    showErrors(errorBox, form, fieldErrors(resp.body));
  } else if (resp.status === 429) {
    showErrors(errorBox, form, [{ id: null, message: 'Too many attempts in a short time. Please wait a minute and try again.' }]);
  } else if (resp.status === 0) {
    showErrors(errorBox, form, [{ id: null, message: `We could not reach the clinic. Check your connection and press ${label} again – you will not be booked twice.` }]);
  } else {
    showErrors(errorBox, form, [{ id: null, message: resp.body?.detail || 'Something went wrong. Please try again, or call the clinic.' }]);
  }
}

// ---- The confirmations.

function confirmation(created) {
  const item = showConfirmation(app, created, state.clinic, {
    embedded: page.embedded,
    bookAgainHref: `/book${page.embedded ? '?embed=1' : ''}`,
  });
  postToParent({ type: 'frontdesk:booked', reference: item.reference });
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
    const p = page.practitioner ? offering(s).find((x) => x.slug === page.practitioner) : null;
    if (p) state.practitioner = p;
    if (isClass(s)) chooseClass();
    else if (p) chooseTime();
    else choosePractitioner();
    return;
  }
  chooseService();
}

start();
