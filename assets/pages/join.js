// Joining the waitlist from the booking page: for a one-to-one day without free times, which
// part of the day suits the patient (the `earliest`/`latest` of POST /api/v1/waitlist); and,
// once joined, what happens next.

import { el, show, focusHeading, dayLabel, showErrors, zoneName } from './common.js';
import { placeRows } from './booked.js';

const HOURS = Array.from({ length: 15 }, (_, i) => `${String(i + 7).padStart(2, '0')}:00`);

function timeSelect(id, labelText, value) {
  return el('div', { class: 'field field-inline', id: `field-${id}` },
    el('label', { for: id }, labelText),
    el('select', { id, name: id }, HOURS.map((h) => el('option', { value: h, selected: h === value }, h))));
}

/**
 * Asks when on `day` the patient could come.
 * options: {root, day, tz, caption, what ("Sports massage with anyone"), initial {earliest,
 *           latest}, onContinue({earliest, latest}), onBack}
 */
export function chooseWindow(options) {
  const { root, day, tz } = options;
  const initial = options.initial || {};
  const between = Boolean(initial.earliest);
  const errorBox = el('div');
  const range = el('div', { class: 'conditional', id: 'window-range', hidden: !between },
    timeSelect('earliest', 'From', initial.earliest || '09:00'),
    timeSelect('latest', 'Until', initial.latest || '17:00'));
  const anyRadio = el('input', { type: 'radio', id: 'window-any', name: 'window', value: 'any', checked: !between });
  const betweenRadio = el('input', {
    type: 'radio', id: 'window-between', name: 'window', value: 'between', checked: between,
    'aria-controls': 'window-range',
  });
  const sync = () => {
    range.hidden = !betweenRadio.checked;
  };
  anyRadio.addEventListener('change', sync);
  betweenRadio.addEventListener('change', sync);
  const form = el('form', { novalidate: true },
    el('fieldset', { class: 'field', id: 'field-window', 'aria-describedby': 'window-hint' },
      el('legend', { class: 'visually-hidden' }, 'When could you come?'),
      el('p', { class: 'hint', id: 'window-hint' }, `Times are the clinic's local time: ${zoneName(tz)}.`),
      el('div', { class: 'radio' }, anyRadio, el('label', { for: 'window-any' }, `Any time on ${dayLabel(day)}`)),
      el('div', { class: 'radio' }, betweenRadio, el('label', { for: 'window-between' }, 'Only between certain times')),
      range),
    el('button', { type: 'submit', class: 'button' }, 'Continue'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!betweenRadio.checked) {
      options.onContinue({ earliest: null, latest: null });
      return;
    }
    const earliest = form.querySelector('#earliest').value;
    const latest = form.querySelector('#latest').value;
    if (latest <= earliest) {
      showErrors(errorBox, form, [{ id: 'latest', message: 'Choose an end time later than the start time' }]);
      return;
    }
    options.onContinue({ earliest, latest });
  });
  document.title = `Join the waitlist – ${document.title.split(' – ').pop()}`;
  show(root,
    options.caption ? el('p', { class: 'caption' }, options.caption) : null,
    el('h1', {}, 'When could you come?'),
    el('p', {}, `There are no free times for ${options.what} on ${dayLabel(day)}. Join the waitlist and, if a time frees up, we will email you and hold it for you for a short while. Whoever joined first is offered first.`),
    errorBox, form,
    el('button', { type: 'button', class: 'link-button back', onclick: options.onBack }, 'Back'));
  focusHeading(root);
}

/**
 * "You are on the waitlist", after POST /api/v1/waitlist.
 * options: {clinic, choice ({kind: 'wait-class', session} | {kind: 'wait-day', day, earliest,
 *           latest}), service, practitioner, email, manageUrl, embedded}
 */
export function showJoined(root, options) {
  const { choice: c, clinic } = options;
  const tz = clinic.time_zone;
  document.title = `You are on the waitlist – ${clinic.name}`;
  const rows = c.kind === 'wait-class'
    ? placeRows({ kind: 'seat', ...c.session }, tz)
    : [el('div', {}, el('dt', {}, 'Appointment'), el('dd', {}, options.service.name)),
      el('div', {}, el('dt', {}, 'With'), el('dd', {}, options.practitioner ? options.practitioner.name : 'Anyone who offers it')),
      el('div', {}, el('dt', {}, 'When'), el('dd', {}, `${dayLabel(c.day)}, ${c.earliest ? `between ${c.earliest} and ${c.latest}` : 'any time'} (${zoneName(tz)})`))];
  const newTab = options.embedded ? { target: '_blank', rel: 'noopener' } : {};
  show(root,
    el('div', { class: 'panel-confirmation' }, el('h1', {}, 'You are on the waitlist')),
    el('dl', { class: 'summary' }, rows),
    el('h2', {}, 'What happens next'),
    el('p', {}, `If a place frees up, we will email ${options.email} with a link to claim it. We hold the place for you for a short while, so please check your email. Whoever joined first is offered first.`),
    el('p', {}, 'You are not booked until you claim a place. You can see or leave the waitlist at any time.'),
    el('p', { class: 'actions' }, el('a', { class: 'button button-secondary', href: options.manageUrl, ...newTab }, 'View or leave the waitlist')),
    el('p', {}, el('a', { href: `/book${options.embedded ? '?embed=1' : ''}` }, 'Book something else')));
  focusHeading(root);
}
