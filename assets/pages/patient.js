// The patient's details and consent, asked the same way wherever a patient books an
// appointment, a seat in a class or a place on the waitlist: the form, its checks, the body the
// API takes, and the API's field errors mapped back onto the form.

import { el } from './common.js';

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

/**
 * The details form. options: {details (earlier answers), clinicName, purpose ("this booking"),
 * emailHint, notes (ask for notes), notesHint, submitLabel}.
 */
export function detailsForm(options) {
  const d = options.details || {};
  const form = el('form', { novalidate: true, id: 'details-form' },
    field('name', 'Full name', el('input', { id: 'name', name: 'name', type: 'text', autocomplete: 'name', value: d.name || '', maxlength: 200 })),
    field('email', 'Email address', el('input', { id: 'email', name: 'email', type: 'email', autocomplete: 'email', spellcheck: 'false', value: d.email || '', maxlength: 254 }),
      options.emailHint),
    field('phone', 'Phone number (optional)', el('input', { id: 'phone', name: 'phone', type: 'tel', autocomplete: 'tel', value: d.phone || '', maxlength: 32 }),
      'So we can reach you if something changes on the day.'),
    options.notes
      ? field('notes', 'Anything we should know? (optional)', el('textarea', { id: 'notes', name: 'notes', rows: 4, maxlength: 2000 }, d.notes || ''),
        options.notesHint || 'For example the injury or what you would like to work on.')
      : null,
    checkbox('privacy', `I agree that ${options.clinicName} may keep my details to manage ${options.purpose}`, d.privacy),
    checkbox('marketing', 'Send me occasional news and offers (optional)', d.marketing),
    el('button', { type: 'submit', class: 'button', id: 'book-button' }, options.submitLabel));
  return form;
}

/** What the patient has typed so far (kept when they step back). */
export function readDetails(form) {
  const v = (id) => form.querySelector(`#${id}`);
  return {
    name: v('name').value, email: v('email').value, phone: v('phone').value,
    notes: v('notes')?.value ?? '', privacy: v('privacy').checked, marketing: v('marketing').checked,
  };
}

/** The checks made before anything is sent. */
export function detailErrors(d) {
  const errors = [];
  if (!d.name.trim()) errors.push({ id: 'name', message: 'Enter your full name' });
  if (!d.email.trim()) errors.push({ id: 'email', message: 'Enter your email address' });
  else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(d.email.trim())) {
    errors.push({ id: 'email', message: 'Enter an email address in the correct format, like name@example.com' });
  }
  if (!d.privacy) errors.push({ id: 'privacy', message: 'Tick the box to agree that we may keep your details' });
  return errors;
}

/** `patient`, `consent` and (when asked) `notes`, as every patient-facing API takes them. */
export function patientBody(d, { notes = true } = {}) {
  return {
    patient: { name: d.name.trim(), email: d.email.trim(), ...(d.phone.trim() ? { phone: d.phone.trim() } : {}) },
    ...(notes && d.notes.trim() ? { notes: d.notes.trim() } : {}),
    consent: { privacy: true, marketing: Boolean(d.marketing) },
  };
}

/** Where the API's field names live in the form. */
const FIELD_IDS = {
  'patient.name': 'name', 'patient.email': 'email', 'patient.phone': 'phone',
  notes: 'notes', 'consent.privacy': 'privacy',
};

const LABELS = {
  'patient.name': 'Your name', 'patient.email': 'Your email address', 'patient.phone': 'Your phone number',
  notes: 'Your notes', 'consent.privacy': 'Your agreement',
};

/** A 422 validation_failed answer as error-summary entries. */
export function fieldErrors(body) {
  const list = (body?.errors || []).map((err) => ({
    id: FIELD_IDS[err.field] || null,
    message: `${LABELS[err.field] || 'This'} ${err.message}`,
  }));
  return list.length ? list : [{ id: null, message: body?.detail || 'Please check your details.' }];
}
