// The page behind a waitlist entry's link: what the patient is waiting for and where the entry
// stands, and leaving the waitlist, through /api/v1/waitlist/{token}.

import { api, el, show, focusHeading, clinic, notice, phoneLink, whenText } from './common.js';

const token = decodeURIComponent(window.location.pathname.split('/').pop() || '');
const base = `/api/v1/waitlist/${encodeURIComponent(token)}`;
const app = document.getElementById('app');

let info = null;

const STATUS = {
  waiting: ['You are on the waitlist', 'If a place frees up, we will email you with a link to claim it. We hold it for you for a short while, so please check your email.'],
  offered: ['We have offered you a place', 'Check your email for the offer, and claim the place before the time the email gives.'],
  claimed: ['You claimed a place', 'It is booked for you. Your confirmation email has a link to see or cancel it.'],
  left: ['You have left the waitlist', 'We will not offer you any more places for this.'],
  expired: ['This waitlist entry has ended', 'The dates it was for have passed.'],
};

// What the entry waits for, as the server rendered it (the entry answer names a class by id
// only; the server has looked the class up).
const summaryRows = [...(document.getElementById('summary')?.children || [])];
/** The summary rows, times in the clinic's zone by name and the patient's own when it differs. */
function rows() {
  return summaryRows.map((row) => {
    const copy = row.cloneNode(true);
    for (const dd of copy.querySelectorAll('dd[data-start]')) dd.textContent = whenText(dd.dataset.start, info.time_zone);
    return copy;
  });
}

function render(entry, message) {
  const [heading, text] = STATUS[entry.status] || STATUS.expired;
  document.title = `${heading} – ${info.name}`;
  const live = el('div', { id: 'notice', role: 'status', 'aria-live': 'polite' });
  const active = entry.status === 'waiting' || entry.status === 'offered';
  show(app,
    el('h1', {}, heading), live,
    el('dl', { class: 'summary', id: 'summary' }, rows()),
    el('p', {}, text),
    active
      ? el('div', { class: 'actions' }, el('button', { type: 'button', class: 'button button-secondary', id: 'leave-start', onclick: () => askLeave(entry) }, 'Leave the waitlist'))
      : el('p', {}, el('a', { href: '/book' }, 'Book online'), ' or call us on ', phoneLink(info.phone), '.'));
  focusHeading(app);
  if (message) notice(live, message, 'success');
}

function askLeave(entry) {
  const live = el('div', { role: 'status', 'aria-live': 'polite' });
  const yes = el('button', { type: 'button', class: 'button button-warning', id: 'confirm-leave' }, 'Yes, leave the waitlist');
  yes.addEventListener('click', async () => {
    if (yes.disabled) return;
    yes.disabled = true;
    const resp = await api(`${base}/leave`, { method: 'POST', body: {} });
    yes.disabled = false;
    if (resp.status === 200 || resp.status === 204) {
      const again = await api(base);
      render(again.status === 200 ? again.body.entry : { ...entry, status: 'left' }, 'You have left the waitlist.');
    } else {
      notice(live, resp.body?.detail || 'We could not take you off the waitlist. Please try again, or call us.', 'error');
    }
  });
  document.title = `Leave the waitlist? – ${info.name}`;
  show(app, el('h1', {}, 'Leave the waitlist?'), live,
    el('dl', { class: 'summary' }, rows()),
    el('p', {}, entry.status === 'offered'
      ? 'The place we are holding for you will go to the next person, and we will not offer you another.'
      : 'We will not offer you a place for this. You can join again later, at the back of the queue.'),
    el('div', { class: 'actions' }, yes,
      el('button', { type: 'button', class: 'button button-secondary', onclick: () => render(entry) }, 'No, stay on it')));
  focusHeading(app);
}

async function start() {
  const [clinicInfo, resp] = await Promise.all([clinic(), api(base)]);
  if (!clinicInfo || resp.status !== 200) return; // the server-rendered page still says what it can
  info = clinicInfo;
  render(resp.body.entry);
}

start();
