// Choosing a day and then a time from GET /api/v1/availability, shared by the booking page and
// the manage page's "change the time". Days without times are shown, marked unavailable; on
// the booking page they open the waitlist for that day (`onEmptyDay`).

import {
  api, el, show, focusHeading, localDate, addDays, dayLabel, clock, differentZone, ownZone, notice,
  zoneNote,
} from './common.js';

const WINDOW_DAYS = 14;

/**
 * Renders the day step into `root` and calls `onPick(slot)` when the patient picks a time.
 * options: {root, tz, serviceId, practitionerId, maxAdvanceDays, onPick, onBack, backLabel,
 *           caption, message, onEmptyDay(day)?}
 * Returns {refresh(message)} to reload the times (after a slot was taken).
 */
export function slotPicker(options) {
  const { root, tz, serviceId, practitionerId, onPick, onBack, onEmptyDay } = options;
  const today = localDate(Date.now(), tz);
  const lastDay = addDays(today, options.maxAdvanceDays ?? 90);
  let windowStart = today;
  let byDay = new Map();
  let chosenDay = null;
  let next = undefined;

  const query = (from, to) => {
    const params = new URLSearchParams({ service_id: serviceId, from, to });
    if (practitionerId) params.set('practitioner_id', practitionerId);
    return api(`/api/v1/availability?${params}`);
  };

  async function load() {
    const to = addDays(windowStart, WINDOW_DAYS - 1);
    const resp = await query(windowStart, to < lastDay ? to : lastDay);
    byDay = new Map();
    if (resp.status !== 200) return false;
    const seen = new Set();
    for (const slot of resp.body.slots) {
      // With "first available" several practitioners share a start: list each time once.
      const key = practitionerId ? `${slot.start}|${slot.practitioner_id}` : slot.start;
      if (seen.has(key)) continue;
      seen.add(key);
      const day = localDate(slot.start, tz);
      if (!byDay.has(day)) byDay.set(day, []);
      byDay.get(day).push(slot);
    }
    return true;
  }

  async function nextAvailable() {
    const params = new URLSearchParams({ service_id: serviceId });
    if (practitionerId) params.set('practitioner_id', practitionerId);
    const resp = await api(`/api/v1/availability/next?${params}`);
    return resp.status === 200 ? resp.body.slot : null;
  }

  function backButton(label, handler) {
    return el('button', { type: 'button', class: 'link-button back', onclick: handler }, label);
  }

  async function renderDays(message) {
    chosenDay = null;
    show(root, el('p', { class: 'loading' }, 'Finding free times…'));
    const ok = await load();
    if (next === undefined) next = await nextAvailable();
    const heading = el('h1', {}, 'Choose a day');
    const parts = [];
    if (options.caption) parts.push(el('p', { class: 'caption' }, options.caption));
    parts.push(heading);
    const live = el('div', { class: 'live', 'aria-live': 'assertive' });
    parts.push(live);
    parts.push(zoneNote(tz));
    if (!ok) {
      parts.push(el('p', { class: 'notice notice-error' }, 'We could not load the free times. Please try again.'));
      parts.push(el('button', { type: 'button', class: 'button', onclick: () => renderDays() }, 'Try again'));
    } else if (!next && !onEmptyDay) {
      parts.push(el('p', { class: 'notice' }, 'There are no free times online at the moment. Please call the clinic to book.'));
    } else {
      if (next) {
        const nextDay = localDate(next.start, tz);
        parts.push(el('p', {}, el('button', {
          type: 'button', class: 'button button-secondary', id: 'next-available',
          onclick: () => goToDay(nextDay),
        }, `Next available: ${dayLabel(nextDay)} at ${clock(next.start, tz)}`)));
      } else {
        parts.push(el('p', { class: 'notice' }, 'There are no free times online at the moment. Choose a day to join its waitlist, or call the clinic.'));
      }
      const list = el('ul', { class: 'days', 'aria-label': 'Days' });
      for (let i = 0; i < WINDOW_DAYS; i += 1) {
        const day = addDays(windowStart, i);
        if (day > lastDay) break;
        const slots = byDay.get(day) || [];
        if (slots.length) {
          list.append(el('li', {}, el('button', {
            type: 'button', class: 'day', 'data-day': day, onclick: () => renderTimes(day),
          }, el('span', { class: 'day-name' }, dayLabel(day, { short: true })),
          el('span', { class: 'day-count' }, `${slots.length} ${slots.length === 1 ? 'time' : 'times'}`))));
        } else if (onEmptyDay) {
          list.append(el('li', {}, el('button', {
            type: 'button', class: 'day day-unavailable day-waitlist', 'data-day': day, onclick: () => onEmptyDay(day),
          }, el('span', { class: 'day-name' }, dayLabel(day, { short: true })),
          el('span', { class: 'day-count' }, 'No times – join the waitlist'))));
        } else {
          list.append(el('li', { class: 'day day-unavailable', 'data-day': day },
            el('span', { class: 'day-name' }, dayLabel(day, { short: true })),
            el('span', { class: 'day-count' }, 'No times')));
        }
      }
      parts.push(list);
      const nav = el('div', { class: 'day-nav' });
      if (windowStart > today) {
        nav.append(el('button', {
          type: 'button', class: 'button button-secondary',
          onclick: () => { windowStart = maxDate(today, addDays(windowStart, -WINDOW_DAYS)); renderDays(); },
        }, 'Earlier dates'));
      }
      if (addDays(windowStart, WINDOW_DAYS) <= lastDay) {
        nav.append(el('button', {
          type: 'button', class: 'button button-secondary',
          onclick: () => { windowStart = addDays(windowStart, WINDOW_DAYS); renderDays(); },
        }, 'Later dates'));
      }
      parts.push(nav);
    }
    if (onBack) parts.push(backButton(options.backLabel || 'Back', onBack));
    show(root, parts);
    focusHeading(root);
    if (message) notice(live, message, 'error');
  }

  async function goToDay(day) {
    if (day < windowStart || day >= addDays(windowStart, WINDOW_DAYS)) {
      windowStart = day;
      await load();
    }
    renderTimes(day);
  }

  function renderTimes(day, message) {
    chosenDay = day;
    const slots = byDay.get(day) || [];
    const parts = [];
    if (options.caption) parts.push(el('p', { class: 'caption' }, options.caption));
    parts.push(el('h1', {}, `Choose a time on ${dayLabel(day)}`));
    const live = el('div', { class: 'live', 'aria-live': 'assertive' });
    parts.push(live);
    parts.push(zoneNote(tz));
    const list = el('ul', { class: 'times', 'aria-label': `Times on ${dayLabel(day)}` });
    for (const slot of slots) {
      const label = [el('span', { class: 'time' }, clock(slot.start, tz))];
      if (differentZone(tz, slot.start)) {
        label.push(el('span', { class: 'own-time' }, `${clock(slot.start, ownZone)} your time`));
      }
      list.append(el('li', {}, el('button', {
        type: 'button', class: 'time-button', 'data-start': slot.start, onclick: () => onPick(slot),
      }, label)));
    }
    if (!slots.length) {
      parts.push(el('p', { class: 'notice' }, 'There are no free times left on this day.'));
      if (onEmptyDay) {
        parts.push(el('p', {}, el('button', {
          type: 'button', class: 'button button-secondary', onclick: () => onEmptyDay(day),
        }, 'Join the waitlist for this day')));
      }
    } else {
      parts.push(list);
    }
    parts.push(backButton('Choose another day', () => renderDays()));
    show(root, parts);
    focusHeading(root);
    if (message) notice(live, message, 'error');
  }

  renderDays(options.message);

  return {
    /** Reloads the times, showing `message`; stays on the chosen day when it still has times. */
    async refresh(message) {
      next = undefined;
      const day = chosenDay;
      const ok = await load();
      next = await nextAvailable();
      if (ok && day && (byDay.get(day) || []).length) renderTimes(day, message);
      else renderDays(message);
    },
  };
}

function maxDate(a, b) {
  return a > b ? a : b;
}
