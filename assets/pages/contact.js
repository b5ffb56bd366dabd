// The contact form: sends the server-rendered form to POST /api/v1/enquiries and shows the
// reference and when the clinic will answer.

import { api, el, show, focusHeading, clinic, showErrors, clearErrors, phoneLink } from './common.js';

const app = document.getElementById('app');
const form = document.getElementById('contact-form');
const errorBox = document.getElementById('error-summary');
const serviceSelect = document.getElementById('service');

const FIELD_IDS = {
  name: 'name', email: 'email', phone: 'phone', message: 'message', topic: 'topic-general',
  preferred_contact: 'contact-email', 'consent.privacy': 'privacy', service_id: 'service',
};
const LABELS = {
  name: 'Your name', email: 'Your email address', phone: 'Your phone number', message: 'Your message',
  topic: 'The topic', preferred_contact: 'How we should reply', 'consent.privacy': 'Your agreement',
  service_id: 'The service',
};

async function loadServices() {
  const resp = await api('/api/v1/services');
  if (resp.status !== 200) return;
  for (const s of resp.body) serviceSelect.append(el('option', { value: s.id }, s.name));
}

function values() {
  const get = (id) => form.querySelector(`#${id}`);
  return {
    name: get('name').value.trim(),
    email: get('email').value.trim(),
    phone: get('phone').value.trim(),
    topic: form.querySelector('input[name=topic]:checked')?.value || 'general',
    service_id: serviceSelect.value || null,
    message: get('message').value.trim(),
    preferred_contact: form.querySelector('input[name=preferred_contact]:checked')?.value || 'email',
    privacy: get('privacy').checked,
    marketing: get('marketing').checked,
    website: get('website').value,
  };
}

function localErrors(v) {
  const errors = [];
  if (!v.name) errors.push({ id: 'name', message: 'Enter your full name' });
  if (!v.email) errors.push({ id: 'email', message: 'Enter your email address' });
  else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.email)) {
    errors.push({ id: 'email', message: 'Enter an email address in the correct format, like name@example.com' });
  }
  if (v.preferred_contact === 'phone' && !v.phone) {
    errors.push({ id: 'phone', message: 'Enter a phone number, as you would like us to call you' });
  }
  if (v.message.length < 10) errors.push({ id: 'message', message: 'Enter your message (at least 10 characters)' });
  if (!v.privacy) errors.push({ id: 'privacy', message: 'Tick the box to agree that we may keep your details' });
  return errors;
}

let sending = false;

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (sending) return;
  const v = values();
  const errors = localErrors(v);
  if (errors.length) {
    showErrors(errorBox, form, errors);
    return;
  }
  clearErrors(errorBox, form);
  const body = {
    name: v.name, email: v.email, topic: v.topic, message: v.message,
    preferred_contact: v.preferred_contact,
    consent: { privacy: true, marketing: v.marketing },
    website: v.website,
    ...(v.phone ? { phone: v.phone } : {}),
    ...(v.service_id ? { service_id: v.service_id } : {}),
  };
  const button = form.querySelector('button[type=submit]');
  sending = true;
  button.disabled = true;
  button.textContent = 'Sending…';
  const resp = await api('/api/v1/enquiries', { method: 'POST', body });
  sending = false;
  button.disabled = false;
  button.textContent = 'Send message';
  if (resp.status === 202) {
    const info = await clinic();
    thanks(resp.body.reference, info);
  } else if (resp.body?.code === 'validation_failed') {
    showErrors(errorBox, form, (resp.body.errors || []).map((err) => ({
      id: FIELD_IDS[err.field] || null, message: `${LABELS[err.field] || 'This'} ${err.message}`,
    })));
  } else if (resp.status === 429) {
    showErrors(errorBox, form, [{ id: null, message: 'Too many messages in a short time. Please wait a minute and try again.' }]);
  } else {
    showErrors(errorBox, form, [{ id: null, message: resp.body?.detail || 'We could not send your message. Please try again, or call us.' }]);
  }
});

function thanks(reference, info) {
  document.title = `Message sent – ${info?.name || ''}`;
  show(app,
    el('div', { class: 'panel-confirmation' },
      el('h1', {}, 'Thank you, we have your message'),
      el('p', {}, 'Your reference is'),
      el('p', { class: 'reference', id: 'reference' }, reference)),
    el('h2', {}, 'What happens next'),
    el('p', {}, `We will reply ${info?.enquiry_response_time || 'as soon as we can'}. We have also sent you an email with your reference.`),
    info ? el('p', {}, 'If it is urgent, call us on ', phoneLink(info.phone), '.') : null,
    el('p', {}, el('a', { href: '/book' }, 'Book an appointment online')));
  focusHeading(app);
}

loadServices();
