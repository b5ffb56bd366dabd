// The page behind a waitlist offer's email link: the place held for the patient and until when,
// then claiming it (which books it, by the same rules as any booking) or declining it, through
// /api/v1/waitlist/offers/{token}.

import {
  api, el, show, focusHeading, clinic, whenText, notice, phoneLink,
} from './common.js';
import { placeOf, placeRows, showConfirmation } from './booked.js';

const token = decodeURIComponent(window.location.pathname.split('/').pop() || '');
const base = `/api/v1/waitlist/offers/${encodeURIComponent(token)}`;
const app = document.getElementById('app');

let info = null;
let timer = null;

function setTitle(text) {
  document.title = `${text} – ${info.name}`;
}

function minutesLeft(expiresAt) {
  const minutes = Math.floor((new Date(expiresAt).getTime() - Date.now()) / 60_000);
  if (minutes < 1) return 'less than a minute left';
  return minutes === 1 ? '1 minute left' : `${minutes} minutes left`;
}

function summary(offer) {
  const place = placeOf(offer);
  return place ? el('dl', { class: 'summary', id: 'summary' }, placeRows(place, info.time_zone)) : null;
}

function render(offer, message) {
  clearInterval(timer);
  const bookAgain = el('p', {}, el('a', { href: '/book' }, 'Book another time'), ' or call us on ', phoneLink(info.phone), '.');
  const live = el('div', { id: 'notice', role: 'status', 'aria-live': 'polite' });
  if (offer.status !== 'open') {
    const text = {
      claimed: ['You have claimed this place', 'It is booked for you. Your confirmation email has a link to see or cancel it.'],
      declined: ['You declined this place', 'We have offered it to the next person on the waitlist.'],
      expired: ['This offer has ended', 'The time it was held for you has passed.'],
      withdrawn: ['This offer has been withdrawn', 'The place is no longer available.'],
    }[offer.status] || ['This offer has ended', 'It can no longer be claimed.'];
    setTitle(text[0]);
    show(app, el('h1', {}, text[0]), live, summary(offer), el('p', {}, text[1]), offer.status === 'claimed' ? null : bookAgain);
    focusHeading(app);
    if (message) notice(live, message, 'error');
    return;
  }
  setTitle('A place is free for you');
  const left = el('span', { id: 'time-left' }, minutesLeft(offer.expires_at));
  timer = setInterval(() => {
    if (new Date(offer.expires_at).getTime() <= Date.now()) reload();
    else left.textContent = minutesLeft(offer.expires_at);
  }, 15_000);
  const claim = el('button', { type: 'button', class: 'button', id: 'claim' }, 'Claim this place');
  claim.addEventListener('click', () => doClaim(claim, live));
  show(app,
    el('h1', {}, 'A place is free for you'),
    live,
    el('p', {}, 'A place has come up from the waitlist, and we are holding it for you.'),
    summary(offer),
    el('p', { class: 'callout', id: 'deadline' }, 'Held for you until ', el('strong', {}, whenText(offer.expires_at, info.time_zone)), ' (', left, '). After that it goes to the next person on the waitlist.'),
    el('div', { class: 'actions' }, claim,
      el('button', { type: 'button', class: 'button button-secondary', onclick: () => askDecline(offer) }, 'No thanks, decline')),
    el('p', {}, 'Claiming books the place for you straight away; we will email you a confirmation.'));
  focusHeading(app);
  if (message) notice(live, message, 'error');
}

async function doClaim(button, live) {
  if (button.disabled) return;
  button.disabled = true;
  button.textContent = 'Claiming…';
  const resp = await api(`${base}/claim`, { method: 'POST', body: {} });
  button.disabled = false;
  button.textContent = 'Claim this place';
  if (resp.status === 201) {
    clearInterval(timer);
    showConfirmation(app, resp.body, info, { lead: 'You claimed this place from the waitlist. It is booked.' });
  } else if (resp.body?.code === 'offer_closed') {
    reload('Sorry, this offer has closed and the place can no longer be claimed.');
  } else if (resp.status === 0) {
    notice(live, 'We could not reach the clinic. Check your connection and try again.', 'error');
  } else {
    notice(live, resp.body?.detail || 'We could not claim the place. Please try again, or call us.', 'error');
  }
}

function askDecline(offer) {
  clearInterval(timer);
  const live = el('div', { role: 'status', 'aria-live': 'polite' });
  const yes = el('button', { type: 'button', class: 'button button-warning', id: 'confirm-decline' }, 'Yes, decline this place');
  yes.addEventListener('click', async () => {
    if (yes.disabled) return;
    yes.disabled = true;
    const resp = await api(`${base}/decline`, { method: 'POST', body: {} });
    yes.disabled = false;
    if (resp.status === 200 || resp.status === 204) {
      reload(null, 'You have declined this place. Thank you for letting us know.');
    } else if (resp.body?.code === 'offer_closed') {
      reload('This offer had already closed.');
    } else {
      notice(live, resp.body?.detail || 'We could not decline the place. Please try again, or call us.', 'error');
    }
  });
  setTitle('Decline this place?');
  show(app, el('h1', {}, 'Decline this place?'), live, summary(offer),
    el('p', {}, 'We will offer it to the next person on the waitlist. You cannot undo this.'),
    el('div', { class: 'actions' }, yes,
      el('button', { type: 'button', class: 'button button-secondary', onclick: () => render(offer) }, 'No, go back')));
  focusHeading(app);
}

async function reload(error, success) {
  const resp = await api(base);
  if (resp.status !== 200) {
    window.location.reload();
    return;
  }
  render(resp.body.offer, error);
  if (success) notice(document.getElementById('notice'), success, 'success');
}

async function start() {
  const [clinicInfo, resp] = await Promise.all([clinic(), api(base)]);
  if (!clinicInfo || resp.status !== 200) return; // the server-rendered page still says what it can
  info = clinicInfo;
  render(resp.body.offer);
}

start();
