// Shared by the patient pages: calls to the public API, building DOM without innerHTML,
// dates and times in the clinic's zone, the error summary, and messages to an embedding page.

const main = document.getElementById('main');

/** Page settings the server put on <main> (embedding, deep links). */
export const page = {
  embedded: main?.dataset.embed === '1',
  parentOrigin: main?.dataset.parentOrigin || null,
  dialog: main?.dataset.mode === 'dialog',
  service: main?.dataset.service || null,
  practitioner: main?.dataset.practitioner || null,
};

/** Calls the JSON API; never throws for an HTTP error, only answers {status, body}. */
export async function api(path, { method = 'GET', body, headers = {} } = {}) {
  const init = { method, headers: { accept: 'application/json', ...headers }, credentials: 'omit' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    const resp = await fetch(path, init);
    let data = null;
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
    return { status: resp.status, body: data };
  } catch {
    return { status: 0, body: null };
  }
}

/** Creates an element: el('p', {class: 'hint'}, 'text', child…). Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces a container's content. */
export function show(container, ...children) {
  container.replaceChildren(...children.flat().filter(Boolean));
}

/** Moves focus to a step's heading so screen readers announce the new step. */
export function focusHeading(root) {
  const heading = root.querySelector('h1, h2');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
}

/** The clinic: name, phone, time zone, policy (cached for the page's life). */
let clinicPromise = null;
export function clinic() {
  if (!clinicPromise) {
    clinicPromise = api('/api/v1/clinic').then((r) => (r.status === 200 ? r.body : null));
  }
  return clinicPromise;
}

/** The patient's own time zone as the browser knows it. */
export const ownZone = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    return null;
  }
})();

/** "YYYY-MM-DD" of an instant in a zone. */
export function localDate(instant, tz) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(new Date(instant));
  const get = (t) => parts.find((p) => p.type === t)?.value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** Adds days to a "YYYY-MM-DD" date (calendar arithmetic, no time of day). */
export function addDays(ymd, days) {
  const d = new Date(`${ymd}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Date parts joined without commas: "Tuesday 3 December 2026". */
function dateText(date, tz, { short = false, year = false } = {}) {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: tz, weekday: short ? 'short' : 'long', day: 'numeric', month: short ? 'short' : 'long',
    ...(year ? { year: 'numeric' } : {}),
  }).formatToParts(date);
  const get = (t) => parts.find((p) => p.type === t)?.value;
  return [get('weekday'), get('day'), get('month'), year ? get('year') : null].filter(Boolean).join(' ');
}

/** "Tuesday 3 December" for a "YYYY-MM-DD" date. */
export function dayLabel(ymd, { short = false } = {}) {
  return dateText(new Date(`${ymd}T12:00:00Z`), 'UTC', { short });
}

/** "09:15" of an instant in a zone. */
export function clock(instant, tz) {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).format(new Date(instant));
}

/** The zone's name at an instant, e.g. "Greenwich Mean Time". */
export function zoneName(tz, instant = Date.now()) {
  try {
    const parts = new Intl.DateTimeFormat('en-GB', { timeZone: tz, timeZoneName: 'long' })
      .formatToParts(new Date(instant));
    return parts.find((p) => p.type === 'timeZoneName')?.value || tz;
  } catch {
    return tz;
  }
}

/** Whether the patient's zone shows a different clock from the clinic's at this instant. */
export function differentZone(tz, instant = Date.now()) {
  return Boolean(ownZone) && ownZone !== tz && clock(instant, ownZone) !== clock(instant, tz);
}

/** "Tuesday 3 December 2026 at 09:15" in a zone. */
export function longWhen(instant, tz) {
  return `${dateText(new Date(instant), tz, { year: true })} at ${clock(instant, tz)}`;
}

/** The time in the clinic's zone, with the patient's own time when it differs. */
export function whenText(instant, tz) {
  let text = `${longWhen(instant, tz)} (${zoneName(tz, instant)})`;
  if (differentZone(tz, instant)) {
    text += ` – ${longWhen(instant, ownZone)} your time (${zoneName(ownZone, instant)})`;
  }
  return text;
}

/** The note above a list of times: the clinic's zone by name, and the patient's when it differs. */
export function zoneNote(tz) {
  const note = el('p', { class: 'hint' }, `Times are the clinic's local time: ${zoneName(tz)} (${tz}).`);
  if (differentZone(tz)) {
    note.append(` Your own time (${zoneName(ownZone)}) is shown beside each time.`);
  }
  return note;
}

/** "£70.00" from pence. */
export function price(pence) {
  return new Intl.NumberFormat('en-GB', { style: 'currency', currency: 'GBP' }).format(pence / 100);
}

/**
 * Shows an error summary at the top of `container` (GOV.UK pattern) linking to each field,
 * puts each message beside its field, and moves focus to the summary.
 * errors: [{id, message}] where id is the field's element id.
 */
export function showErrors(container, form, errors) {
  clearErrors(container, form);
  if (!errors.length) return;
  const list = el('ul', { class: 'error-summary-list' });
  for (const { id, message } of errors) {
    const target = id && form ? form.querySelector(`#${CSS.escape(id)}`) : null;
    list.append(el('li', {}, target
      ? el('a', { href: `#${id}`, onclick: (e) => { e.preventDefault(); target.focus(); } }, message)
      : message));
    if (target) {
      const field = target.closest('.field') || target.parentElement;
      field.classList.add('field-error');
      const msgId = `${id}-error`;
      const msg = el('p', { class: 'error-message', id: msgId }, el('span', { class: 'visually-hidden' }, 'Error: '), message);
      const anchor = field.querySelector('legend, label');
      if (target.matches('[type=checkbox]')) field.prepend(msg);
      else (anchor && field.tagName !== 'FIELDSET' ? anchor : field.firstElementChild).after(msg);
      const described = (target.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
      target.setAttribute('aria-describedby', [...described, msgId].join(' '));
      target.setAttribute('aria-invalid', 'true');
    }
  }
  const summary = el('div', { class: 'error-summary', role: 'alert', tabindex: '-1', 'aria-labelledby': 'error-summary-title' },
    el('h2', { id: 'error-summary-title' }, 'There is a problem'), list);
  container.replaceChildren(summary);
  summary.focus();
}

export function clearErrors(container, form) {
  container.replaceChildren();
  if (!form) return;
  for (const msg of form.querySelectorAll('.error-message')) {
    const input = form.querySelector(`[aria-describedby~="${msg.id}"]`);
    if (input) {
      const rest = input.getAttribute('aria-describedby').split(' ').filter((t) => t && t !== msg.id);
      if (rest.length) input.setAttribute('aria-describedby', rest.join(' '));
      else input.removeAttribute('aria-describedby');
      input.removeAttribute('aria-invalid');
    }
    msg.remove();
  }
  for (const field of form.querySelectorAll('.field-error')) field.classList.remove('field-error');
}

/** A plain, announced message (status or error) in a live region. */
export function notice(container, text, kind = 'info') {
  container.replaceChildren(el('p', { class: `notice notice-${kind}` }, text));
}

// ---- Embedding: messages to the host page, only to its allowed origin, never personal data.

export function postToParent(message) {
  if (!page.embedded || !page.parentOrigin || window.parent === window) return;
  window.parent.postMessage(message, page.parentOrigin);
}

if (page.embedded) {
  let last = 0;
  const report = () => {
    const height = Math.ceil(document.body.getBoundingClientRect().height);
    if (height !== last) {
      last = height;
      postToParent({ type: 'frontdesk:resize', height });
    }
  };
  new ResizeObserver(report).observe(document.body);
  report();
  if (page.dialog) {
    // Esc inside the frame never reaches the host page's dialog: ask it to close.
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') postToParent({ type: 'frontdesk:close' });
    });
  }
}

// ---- Calendar file for "add to calendar".

function icsText(value) {
  return String(value).replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,').replace(/\r?\n/g, '\\n');
}

/** Folds a content line at 75 octets (RFC 5545 3.1). */
function fold(line) {
  const bytes = new TextEncoder().encode(line);
  if (bytes.length <= 75) return line;
  const out = [];
  let current = '';
  let size = 0;
  for (const ch of line) {
    const n = new TextEncoder().encode(ch).length;
    if (size + n > (out.length ? 74 : 75)) {
      out.push(current);
      current = '';
      size = 0;
    }
    current += ch;
    size += n;
  }
  out.push(current);
  return out.join('\r\n ');
}

function icsInstant(iso) {
  return new Date(iso).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** A one-event VCALENDAR for a booking or a class seat; the UID matches the emailed invitation's. */
export function bookingIcs(booking, clinicInfo, manageUrl) {
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Frontdesk//Booking page//EN',
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    'BEGIN:VEVENT',
    `UID:${booking.id}@frontdesk`,
    `DTSTAMP:${icsInstant(new Date().toISOString())}`,
    `DTSTART:${icsInstant(booking.start)}`,
    `DTEND:${icsInstant(booking.end)}`,
    `SUMMARY:${icsText(`${booking.service.name} with ${booking.practitioner.name}`)}`,
    `LOCATION:${icsText(clinicInfo ? `${clinicInfo.name}, ${clinicInfo.address}` : '')}`,
    `DESCRIPTION:${icsText(`Reference ${booking.reference}.${manageUrl ? ` View, change or cancel: ${manageUrl}` : ''}`)}`,
    ...(manageUrl ? [`URL:${manageUrl}`] : []),
    'STATUS:CONFIRMED',
    'END:VEVENT',
    'END:VCALENDAR',
  ];
  return `${lines.map(fold).join('\r\n')}\r\n`;
}

/** A link that downloads the booking as an .ics file. */
export function calendarLink(booking, clinicInfo, manageUrl) {
  const blob = new Blob([bookingIcs(booking, clinicInfo, manageUrl)], { type: 'text/calendar' });
  return el('a', {
    class: 'button button-secondary',
    href: URL.createObjectURL(blob),
    download: `${booking.kind === 'seat' ? 'class' : 'appointment'}-${booking.reference}.ics`,
  }, 'Add to calendar (.ics)');
}

/** A tel: link to the clinic. */
export function phoneLink(phone) {
  return el('a', { href: `tel:${String(phone).replace(/[^\d+]/g, '')}` }, phone);
}
