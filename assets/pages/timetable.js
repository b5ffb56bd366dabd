// The class timetable from GET /api/v1/classes, two weeks at a time: each session with its
// instructor and the places left. A session with places is booked by choosing it; a full one
// offers its waitlist instead; a cancelled one is shown so the timetable reads true.

import {
  api, el, show, focusHeading, localDate, addDays, dayLabel, clock, differentZone, ownZone,
  notice, zoneNote,
} from './common.js';

const WINDOW_DAYS = 14;

function placesText(session) {
  if (session.seats_left === 1) return '1 place left';
  return `${session.seats_left} places left`;
}

/**
 * Renders the timetable into `root`.
 * options: {root, tz, serviceId, practitionerId?, maxAdvanceDays, minNoticeMinutes, caption,
 *           message, onPick(session), onWaitlist(session), onBack}
 * Returns {refresh(message)} to reload the places (after a class filled meanwhile).
 */
export function classTimetable(options) {
  const { root, tz, serviceId, onPick, onWaitlist, onBack } = options;
  const today = localDate(Date.now(), tz);
  const lastDay = addDays(today, options.maxAdvanceDays ?? 90);
  let windowStart = today;

  async function load() {
    const to = addDays(windowStart, WINDOW_DAYS - 1);
    const params = new URLSearchParams({ service_id: serviceId, from: windowStart, to: to < lastDay ? to : lastDay });
    const resp = await api(`/api/v1/classes?${params}`);
    if (resp.status !== 200) return null;
    const now = Date.now();
    return resp.body.items.filter((s) => new Date(s.start).getTime() > now
      && (!options.practitionerId || s.practitioner.id === options.practitionerId));
  }

  function timeLabel(session) {
    const label = [el('span', { class: 'time' }, `${clock(session.start, tz)}–${clock(session.end, tz)}`)];
    if (differentZone(tz, session.start)) {
      label.push(el('span', { class: 'own-time' }, `${clock(session.start, ownZone)} your time`));
    }
    return label;
  }

  function sessionItem(session) {
    const day = dayLabel(localDate(session.start, tz));
    const tooSoon = new Date(session.start).getTime() - Date.now() < (options.minNoticeMinutes || 0) * 60_000;
    if (session.status === 'cancelled') {
      return el('li', { class: 'session session-closed', 'data-class': session.id },
        timeLabel(session), el('span', {}, `with ${session.practitioner.name}`),
        el('span', { class: 'session-state' }, el('span', { class: 'tag tag-cancelled' }, 'Cancelled')));
    }
    if (tooSoon) {
      return el('li', { class: 'session session-closed', 'data-class': session.id },
        timeLabel(session), el('span', {}, `with ${session.practitioner.name}`),
        el('span', { class: 'session-state' }, 'Too late to book online'));
    }
    if (session.seats_left <= 0) {
      return el('li', { class: 'session session-full', 'data-class': session.id },
        timeLabel(session), el('span', {}, `with ${session.practitioner.name}`),
        el('span', { class: 'session-state' }, el('strong', {}, 'Full')),
        el('button', { type: 'button', class: 'button button-secondary session-waitlist', onclick: () => onWaitlist(session) },
          'Join the waitlist', el('span', { class: 'visually-hidden' }, ` for ${clock(session.start, tz)} on ${day}`)));
    }
    return el('li', {}, el('button', {
      type: 'button', class: 'session session-open', 'data-class': session.id, onclick: () => onPick(session),
    }, timeLabel(session), el('span', {}, `with ${session.practitioner.name}`),
    el('span', { class: 'session-state' }, placesText(session)),
    el('span', { class: 'visually-hidden' }, `, ${day}`)));
  }

  async function render(message) {
    show(root, el('p', { class: 'loading' }, 'Finding classes…'));
    const sessions = await load();
    const parts = [];
    if (options.caption) parts.push(el('p', { class: 'caption' }, options.caption));
    parts.push(el('h1', {}, 'Choose a class'));
    const live = el('div', { class: 'live', 'aria-live': 'assertive' });
    parts.push(live, zoneNote(tz));
    if (!sessions) {
      parts.push(el('p', { class: 'notice notice-error' }, 'We could not load the timetable. Please try again.'),
        el('button', { type: 'button', class: 'button', onclick: () => render() }, 'Try again'));
    } else if (!sessions.length) {
      parts.push(el('p', { class: 'notice' }, `There are no classes between ${dayLabel(windowStart)} and ${dayLabel(addDays(windowStart, WINDOW_DAYS - 1))}.`));
    } else {
      const byDay = new Map();
      for (const s of sessions) {
        const day = localDate(s.start, tz);
        if (!byDay.has(day)) byDay.set(day, []);
        byDay.get(day).push(s);
      }
      for (const [day, list] of byDay) {
        const headingId = `day-${day}`;
        parts.push(el('h2', { class: 'day-heading', id: headingId }, dayLabel(day)),
          el('ul', { class: 'sessions', 'aria-labelledby': headingId }, list.map(sessionItem)));
      }
    }
    const nav = el('div', { class: 'day-nav' });
    if (windowStart > today) {
      nav.append(el('button', {
        type: 'button', class: 'button button-secondary',
        onclick: () => { const back = addDays(windowStart, -WINDOW_DAYS); windowStart = back > today ? back : today; render(); },
      }, 'Earlier dates'));
    }
    if (addDays(windowStart, WINDOW_DAYS) <= lastDay) {
      nav.append(el('button', {
        type: 'button', class: 'button button-secondary',
        onclick: () => { windowStart = addDays(windowStart, WINDOW_DAYS); render(); },
      }, 'Later dates'));
    }
    parts.push(nav);
    if (onBack) parts.push(el('button', { type: 'button', class: 'link-button back', onclick: onBack }, 'Back'));
    show(root, parts);
    focusHeading(root);
    if (message) notice(live, message, 'error');
  }

  render(options.message);
  return { refresh: (message) => render(message) };
}
