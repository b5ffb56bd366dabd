// Patient journeys in Debian's chromium, driven by playwright-core, against the release binary
// on a fresh SQLite database with the file email transport, plus a host page on a second
// origin that embeds the booking page. Run by .ci/browser; every journey is checked through
// the API as well, and axe-core checks every page state.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { classJourneys } from './classes.mjs';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const target = path.join(root, 'target');
// FRONTDESK_BINARY points at another build (a debug one while working on the pages).
const binary = process.env.FRONTDESK_BINARY || path.join(target, 'release', 'frontdesk');
const shots = path.join(target, 'browser-screenshots');
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const ADMIN = { email: 'admin@browser.test', password: 'browser test admin password' };
const OVERALL_TIMEOUT_MS = 240_000;

const results = [];
let failures = 0;

function log(...args) {
  console.log(...args);
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- The service under test.

mkdirSync(target, { recursive: true });
mkdirSync(shots, { recursive: true });
const work = mkdtempSync(path.join(target, 'browser-run-'));
const mailDir = path.join(work, 'mail');
const appPort = await freePort();
const hostPort = await freePort();
const base = `http://127.0.0.1:${appPort}`;
const hostOrigin = `http://127.0.0.1:${hostPort}`;

const env = { ...process.env };
for (const key of Object.keys(env)) if (key.startsWith('FRONTDESK')) delete env[key];
Object.assign(env, {
  FRONTDESK_ENV: 'development', // the outbox worker runs (the test profile turns it off)
  FRONTDESK__SERVER__PORT: String(appPort),
  FRONTDESK__SERVER__PUBLIC_URL: base,
  FRONTDESK__SERVER__EMBED_ORIGINS: hostOrigin,
  FRONTDESK__DATABASE__URL: `sqlite://${path.join(work, 'frontdesk.db')}?mode=rwc`,
  FRONTDESK__DEMO__SEED: 'true',
  FRONTDESK__RATE_LIMIT__ENABLED: 'false',
  FRONTDESK__EMAIL__TRANSPORT: 'file',
  FRONTDESK__EMAIL__FILE_DIR: mailDir,
  FRONTDESK__EMAIL__OUTBOX__POLL_INTERVAL_MS: '200',
  // A freed place is offered at once, not after the two minutes a real clinic waits.
  FRONTDESK__WAITLIST__GRACE_SECONDS: '0',
  FRONTDESK__WAITLIST__POLL_INTERVAL_MS: '200',
  FRONTDESK__BOOTSTRAP__ADMIN_EMAIL: ADMIN.email,
  FRONTDESK__BOOTSTRAP__ADMIN_PASSWORD: ADMIN.password,
  FRONTDESK__LOG__LEVEL: 'warn',
});
const service = spawn(binary, ['--config-dir', path.join(root, 'config')], {
  cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'],
});
let serviceLog = '';
service.stdout.on('data', (d) => { serviceLog += d; });
service.stderr.on('data', (d) => { serviceLog += d; });

// ---- The clinic's own site, on a second origin.

function hostPage(mode) {
  const svc = mode === 'inline' ? ' data-service="sports-massage"' : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Riverside clinic website</title>
<style>body{font-family:sans-serif;margin:0 auto;max-width:60rem;padding:1rem}</style></head>
<body><header><h1>Riverside Physio &amp; Fitness</h1><p>Welcome to our clinic. Book online below.</p></header>
<main><p><a href="#top">A link before the booking</a></p>
<script src="${base}/embed.js"${svc} data-mode="${mode}" async></script>
<p><a href="#after">A link after the booking</a></p></main>
<script>window.__booked = [];
document.addEventListener('frontdesk:booked', function (e) { window.__booked.push(e.detail); });
window.__messages = [];
window.addEventListener('message', function (e) { window.__messages.push(e.data); });</script>
</body></html>`;
}

const host = http.createServer((req, res) => {
  const mode = req.url.startsWith('/button') ? 'button' : 'inline';
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(hostPage(mode));
});
await new Promise((r) => host.listen(hostPort, '127.0.0.1', r));

// ---- API helpers (the journeys are checked through the API too).

async function apiCall(p, { method = 'GET', body, token } = {}) {
  const headers = { accept: 'application/json' };
  if (body) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(`${base}${p}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  return { status: resp.status, body: data };
}

async function waitForService() {
  for (let i = 0; i < 150; i += 1) {
    try {
      const r = await fetch(`${base}/health/ready`);
      if (r.ok) return;
    } catch { /* not yet */ }
    if (service.exitCode !== null) break;
    await sleep(200);
  }
  throw new Error(`the service did not start:\n${serviceLog}`);
}

/** Every link under `prefix` (`/manage/`…) in the .eml files that mention `mentions`. */
function mailLinks(prefix, mentions) {
  const pattern = new RegExp(`http://127\\.0\\.0\\.1:\\d+${prefix}[A-Za-z0-9_-]+`, 'g');
  const links = new Set();
  let files = [];
  try { files = readdirSync(mailDir); } catch { return []; }
  for (const f of files) {
    const raw = readFileSync(path.join(mailDir, f), 'utf8');
    const qp = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
    const decoded = [qp];
    for (const block of raw.match(/(?:^[A-Za-z0-9+/=]{40,}\r?\n)+/gm) || []) {
      decoded.push(Buffer.from(block.replace(/\s+/g, ''), 'base64').toString('utf8'));
    }
    const text = decoded.join('\n');
    if (!text.includes(mentions)) continue;
    for (const m of text.matchAll(pattern)) links.add(m[0]);
  }
  return [...links];
}

/** Every manage link in the .eml files that mention `reference`. */
function manageLinksFor(reference) {
  return mailLinks('/manage/', reference);
}

// ---- Browser helpers.

const cspViolations = [];

/** Records CSP violations and script errors; sets the patient's time zone (London by default). */
async function watch(page, timezoneId = 'Europe/London') {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setTimezoneOverride', { timezoneId });
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) cspViolations.push(`${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => cspViolations.push(`${page.url()}: script error ${err.message}`));
}

/** axe-core on a page or frame: no serious or critical violation. */
async function axe(frameOrPage, label) {
  await frameOrPage.evaluate(axeSource);
  const violations = await frameOrPage.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} – ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert(violations.length === 0, `axe on ${label}:\n  ${violations.join('\n  ')}`);
}

async function noHorizontalScroll(page, label) {
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert(width <= 360, `${label}: scrollWidth ${width} > 360 at 360 px`);
}

async function screenshot(page, name) {
  const size = page.viewportSize();
  for (const width of [375, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: path.join(shots, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(size);
}

/** With FRONTDESK_DOCS_DIR set, a small screenshot of the visible page for the README. */
async function docShot(page, name, size = { width: 375, height: 760 }) {
  const dir = process.env.FRONTDESK_DOCS_DIR;
  if (!dir) return;
  const before = page.viewportSize();
  await page.setViewportSize(size);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
  await page.setViewportSize(before);
}

async function journey(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failures += 1;
    results.push(`FAIL ${name}: ${err.stack || err}`);
    const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
    for (const [i, p] of context.pages().entries()) {
      await p.screenshot({ path: path.join(shots, `failure-${slug}-${i}.png`), fullPage: true }).catch(() => {});
    }
  }
}

/** Walks the booking steps inside `scope` (a page or a frame locator) up to the details form. */
async function chooseUpToDetails(scope, { serviceName = null, later = false } = {}) {
  if (serviceName) {
    await scope.getByRole('heading', { name: 'Choose a service' }).waitFor();
    await scope.getByLabel(serviceName).check();
    await scope.getByRole('button', { name: 'Continue' }).click();
  }
  const who = scope.getByRole('heading', { name: 'Who would you like to see?' });
  const day = scope.getByRole('heading', { name: 'Choose a day' });
  await who.or(day).first().waitFor();
  if (await who.isVisible()) {
    await scope.getByLabel('First available').check();
    await scope.getByRole('button', { name: 'Continue' }).click();
  }
  await day.waitFor();
  if (later) {
    // Past the 24-hour notice, so the booking can still be changed online.
    await scope.getByRole('button', { name: 'Later dates' }).click();
    await scope.locator('button.day').first().click();
  } else {
    await scope.getByRole('button', { name: /^Next available/ }).click();
  }
  await scope.getByRole('heading', { name: /^Choose a time on/ }).waitFor();
  const first = scope.locator('.time-button').first();
  const start = await first.getAttribute('data-start');
  await first.click();
  await scope.getByRole('heading', { name: 'Your details' }).waitFor();
  return start;
}

async function fillDetails(scope, who) {
  await scope.getByLabel('Full name').fill(who.name);
  await scope.getByLabel('Email address').fill(who.email);
  await scope.getByLabel('Phone number (optional)').fill('07700 900123');
  await scope.getByLabel('Anything we should know? (optional)').fill('Tight calves after a half marathon.');
  await scope.getByLabel(/may keep my details/).check();
}

// ---- Run.

const timer = setTimeout(() => {
  console.error('browser tests: overall time limit reached');
  service.kill('SIGTERM');
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

let context;
try {
  await waitForService();
  const login = await apiCall('/api/v1/auth/login', { method: 'POST', body: ADMIN });
  assert(login.status === 200, `admin login ${login.status}`);
  const adminToken = login.body.token;
  const services = (await apiCall('/api/v1/services')).body;
  const userData = mkdtempSync(path.join(work, 'chromium-'));
  context = await chromium.launchPersistentContext(userData, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
    acceptDownloads: true,
  });
  context.setDefaultTimeout(15_000);

  let manageLink = null;

  await journey('book through the embed on a host page from a second origin, with its email', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${hostOrigin}/`);
    const frameEl = page.locator('iframe[title="Book an appointment"]');
    await frameEl.waitFor();
    const frame = page.frameLocator('iframe[title="Book an appointment"]');
    const realFrame = () => page.frames().find((f) => f.url().startsWith(`${base}/book`));
    await frame.getByRole('heading', { name: /Who would you like to see\?|Choose a day/ }).first().waitFor();
    await axe(realFrame(), 'embedded booking, first step');
    await screenshot(page, 'embed-host-page');
    await docShot(page, 'embed', { width: 900, height: 720 });
    const start = await chooseUpToDetails(frame, { later: true });
    await axe(realFrame(), 'embedded booking, details');
    // Submitting empty shows the error summary, linked to the fields.
    await frame.getByRole('button', { name: 'Confirm booking' }).click();
    await frame.getByRole('alert').getByText('There is a problem').waitFor();
    await axe(realFrame(), 'embedded booking, errors');
    await fillDetails(frame, { name: 'Priya Shah', email: 'priya@example.com' });
    // A double click books once: the second click finds the first on its way.
    await frame.getByRole('button', { name: 'Confirm booking' }).dblclick();
    await frame.getByRole('heading', { name: 'Booking confirmed' }).waitFor();
    const reference = (await frame.locator('#reference').textContent()).trim();
    await axe(realFrame(), 'embedded booking, confirmation');
    // The host page heard about it, without personal data, and sized the frame.
    await page.waitForFunction(() => window.__booked.length > 0);
    const booked = await page.evaluate(() => window.__booked);
    assert(booked.length === 1 && booked[0].reference === reference, `booked event ${JSON.stringify(booked)}`);
    const messages = await page.evaluate(() => window.__messages);
    assert(messages.every((m) => Object.keys(m).every((k) => ['type', 'height', 'reference'].includes(k))),
      `messages carry only type, height, reference: ${JSON.stringify(messages)}`);
    const height = await frameEl.evaluate((f) => f.getBoundingClientRect().height);
    const content = await realFrame().evaluate(() => document.body.getBoundingClientRect().height);
    assert(Math.abs(height - content) <= 2, `frame height ${height} follows its content ${content}`);
    // The .ics download is a valid VCALENDAR for this booking.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      frame.getByRole('link', { name: /Add to calendar/ }).click(),
    ]);
    const ics = readFileSync(await download.path(), 'utf8');
    assert(ics.startsWith('BEGIN:VCALENDAR\r\nVERSION:2.0\r\n') && ics.trimEnd().endsWith('END:VCALENDAR'), 'VCALENDAR');
    const dtstart = new Date(start).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    assert(ics.includes(`DTSTART:${dtstart}`), `DTSTART ${dtstart} in\n${ics}`);
    assert(ics.includes(`Reference ${reference}`), 'reference in the calendar file');
    assert(ics.split('\r\n').every((l) => new TextEncoder().encode(l).length <= 75), 'folded lines');
    await screenshot(page, 'embed-confirmation');
    // Through the API: exactly one booking for this patient, at that time.
    const list = await apiCall('/api/v1/staff/bookings?email=priya@example.com', { token: adminToken });
    assert(list.status === 200 && list.body.total === 1, `one booking: ${JSON.stringify(list.body)}`);
    assert(list.body.items[0].reference === reference && list.body.items[0].start === start, 'the booked slot');
    // The confirmation email carries the manage link, under public_url.
    for (let i = 0; i < 50 && !manageLink; i += 1) {
      [manageLink] = manageLinksFor(reference);
      if (!manageLink) await sleep(200);
    }
    assert(manageLink && manageLink.startsWith(`${base}/manage/`), 'a manage link in the confirmation email');
    await page.close();
  });

  await journey('the manage link: view, reschedule, then cancel', async () => {
    assert(manageLink, 'needs the booking from the embed journey');
    const token = manageLink.split('/').pop();
    const page = await context.newPage();
    await watch(page);
    const resp = await page.goto(manageLink);
    assert(resp.status() === 200, `manage page ${resp.status()}`);
    await page.getByRole('heading', { name: 'Your booking' }).waitFor();
    await page.getByText(/You can change the time or cancel online until/).waitFor();
    await page.getByRole('button', { name: 'Change the time' }).waitFor();
    await axe(page, 'manage page');
    await screenshot(page, 'manage');
    await docShot(page, 'manage');
    const before = (await apiCall(`/api/v1/manage/${token}`)).body.booking;
    await page.getByRole('button', { name: 'Change the time' }).click();
    await page.getByRole('heading', { name: 'Choose a day' }).waitFor();
    await axe(page, 'manage page, choose a day');
    await page.getByRole('button', { name: 'Later dates' }).click();
    await page.locator('button.day').first().click();
    await page.getByRole('heading', { name: /^Choose a time on/ }).waitFor();
    await axe(page, 'manage page, choose a time');
    const choice = page.locator(`.time-button:not([data-start="${before.start}"])`).first();
    const newStart = await choice.getAttribute('data-start');
    await choice.click();
    await page.getByRole('heading', { name: 'Confirm the new time' }).waitFor();
    await axe(page, 'manage page, confirm the new time');
    await page.getByRole('button', { name: 'Confirm the new time' }).click();
    await page.getByText(/Your booking has moved to/).waitFor();
    await page.getByText(/You can change the time or cancel online until/).waitFor();
    const moved = (await apiCall(`/api/v1/manage/${token}`)).body.booking;
    assert(moved.start === newStart && moved.reference === before.reference && moved.id === before.id,
      `moved: ${JSON.stringify(moved)}`);
    await page.getByRole('button', { name: 'Cancel this booking' }).click();
    await page.getByRole('heading', { name: 'Cancel this booking?' }).waitFor();
    await axe(page, 'manage page, cancel');
    await page.getByLabel('Why are you cancelling? (optional)').fill('Feeling better, thank you');
    await page.getByRole('button', { name: 'Yes, cancel my booking' }).click();
    await page.getByText('Your booking is cancelled.').waitFor();
    await axe(page, 'manage page, cancelled');
    const cancelled = (await apiCall(`/api/v1/manage/${token}`)).body;
    assert(cancelled.booking.status === 'cancelled', `cancelled: ${JSON.stringify(cancelled)}`);
    await page.reload();
    await page.getByText('This booking has been cancelled.').waitFor();
    await page.close();
  });

  await journey('an unknown manage link gets a friendly page with the phone', async () => {
    const page = await context.newPage();
    await watch(page);
    const resp = await page.goto(`${base}/manage/no-such-token`);
    assert(resp.status() === 404, `status ${resp.status()}`);
    await page.getByRole('heading', { name: 'We could not find that booking' }).waitFor();
    await page.getByRole('main').getByRole('link', { name: '020 7946 0000' }).waitFor();
    await axe(page, 'manage page, not found');
    await screenshot(page, 'manage-not-found');
    await page.close();
  });

  await journey('the contact form', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${base}/contact`);
    await axe(page, 'contact form');
    await screenshot(page, 'contact');
    await docShot(page, 'contact');
    await page.getByLabel('By phone').check();
    await page.getByRole('button', { name: 'Send message' }).click();
    const summary = page.getByRole('alert');
    await summary.getByText('There is a problem').waitFor();
    assert(await summary.evaluate((el) => el === document.activeElement), 'the error summary takes focus');
    await summary.getByRole('link', { name: /Enter a phone number/ }).waitFor();
    assert(await page.getByLabel(/Phone number/).getAttribute('aria-invalid') === 'true', 'phone marked invalid');
    await axe(page, 'contact form, errors');
    await screenshot(page, 'contact-errors');
    await page.getByLabel('Full name').fill('Tom Jones');
    await page.getByLabel('Email address').fill('tom@example.com');
    await page.getByLabel(/Phone number/).fill('07700 900456');
    await page.getByLabel('Pilates').check();
    await page.getByLabel(/Which service/).selectOption({ label: '1:1 Pilates' });
    await page.getByLabel('Your message').fill('Do you offer Pilates for back pain on weekday evenings?');
    await page.getByLabel(/may keep my details to answer/).check();
    // The honeypot is out of sight and out of the accessibility tree.
    assert(!(await page.getByRole('textbox', { name: 'Leave this empty' }).count()), 'honeypot hidden from assistive tech');
    assert(!(await page.locator('#website').isVisible()) || (await page.locator('#website').boundingBox()).x < 0, 'honeypot off screen');
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.getByRole('heading', { name: 'Thank you, we have your message' }).waitFor();
    const reference = (await page.locator('#reference').textContent()).trim();
    await page.getByText(/We will reply within one working day/).waitFor();
    await axe(page, 'contact, thank you');
    await screenshot(page, 'contact-thanks');
    const inbox = await apiCall(`/api/v1/staff/enquiries?q=tom@example.com`, { token: adminToken });
    assert(inbox.status === 200 && inbox.body.items.some((e) => e.reference === reference
      && e.topic === 'pilates' && e.preferred_contact === 'phone' && e.status === 'new'),
    `enquiry in the inbox: ${JSON.stringify(inbox.body)}`);
    await page.close();
  });

  await journey('a keyboard-only booking', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${base}/book`);
    await page.getByRole('heading', { name: 'Choose a service' }).waitFor();
    await axe(page, 'booking, choose a service');
    await screenshot(page, 'book-service');
    /** Presses Tab until the focused element's accessible text matches. */
    async function tabTo(pattern, max = 80) {
      for (let i = 0; i < max; i += 1) {
        await page.keyboard.press('Tab');
        const text = await page.evaluate(() => {
          const a = document.activeElement;
          if (!a) return '';
          const label = a.labels && a.labels[0] ? a.labels[0].textContent : '';
          return `${label} ${a.textContent || ''} ${a.value || ''}`.trim();
        });
        if (pattern.test(text)) return;
      }
      throw new Error(`Tab never reached ${pattern}`);
    }
    /** Moves through a radio group with the arrow keys until the focused one matches. */
    async function arrowTo(pattern, max = 20) {
      for (let i = 0; i < max; i += 1) {
        const text = await page.evaluate(() => document.activeElement.labels?.[0]?.textContent || '');
        if (pattern.test(text)) return;
        await page.keyboard.press('ArrowDown');
      }
      throw new Error(`the arrow keys never reached ${pattern}`);
    }
    // Into the services' radio group (its first radio, whichever service that is), then along it.
    for (let i = 0; i < 20 && !(await page.evaluate(() => document.activeElement?.name === 'service')); i += 1) {
      await page.keyboard.press('Tab');
    }
    await arrowTo(/Physiotherapy initial assessment/);
    await page.keyboard.press('Space');
    await tabTo(/^Continue$/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Who would you like to see?' }).waitFor();
    await axe(page, 'booking, choose a practitioner');
    await screenshot(page, 'book-practitioner');
    await tabTo(/First available/);
    await arrowTo(/Amara Okafor/);
    await page.keyboard.press('Space');
    await tabTo(/^Continue$/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Choose a day' }).waitFor();
    await axe(page, 'booking, choose a day');
    await screenshot(page, 'book-day');
    await docShot(page, 'book');
    await tabTo(/^Next available/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /^Choose a time on/ }).waitFor();
    await axe(page, 'booking, choose a time');
    await screenshot(page, 'book-time');
    await tabTo(/^\d\d:\d\d/);
    const start = await page.evaluate(() => document.activeElement.dataset.start);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Your details' }).waitFor();
    await tabTo(/^Full name/);
    await page.keyboard.type('Kai Morgan');
    await tabTo(/^Email address/);
    await page.keyboard.type('kai@example.com');
    await tabTo(/may keep my details/);
    await page.keyboard.press('Space');
    await screenshot(page, 'book-details');
    await tabTo(/^Confirm booking$/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Booking confirmed' }).waitFor();
    await axe(page, 'booking, confirmed');
    await screenshot(page, 'book-confirmation');
    const list = await apiCall('/api/v1/staff/bookings?email=kai@example.com', { token: adminToken });
    assert(list.body.total === 1 && list.body.items[0].start === start, `keyboard booking: ${JSON.stringify(list.body)}`);
    assert(list.body.items[0].practitioner.name === 'Amara Okafor', 'with the chosen practitioner');
    await page.close();
  });

  await journey('a slot taken between choosing and submitting', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${base}/book?service=physio-follow-up&practitioner=amara-okafor`);
    const start = await chooseUpToDetails(page);
    await fillDetails(page, { name: 'Lee Chan', email: 'lee@example.com' });
    const svc = services.find((s) => s.slug === 'physio-follow-up');
    const amara = (await apiCall('/api/v1/practitioners')).body.find((p) => p.slug === 'amara-okafor');
    const taken = await apiCall('/api/v1/bookings', {
      method: 'POST',
      body: {
        service_id: svc.id, practitioner_id: amara.id, start,
        patient: { name: 'Someone Else', email: 'else@example.com' }, consent: { privacy: true, marketing: false },
      },
    });
    assert(taken.status === 201, `the API books the slot first: ${taken.status}`);
    await page.getByRole('button', { name: 'Confirm booking' }).click();
    await page.getByText(/that time has just been taken/).waitFor();
    await page.getByRole('heading', { name: /^Choose a (time on|day)/ }).waitFor();
    assert(await page.locator(`.time-button[data-start="${start}"]`).count() === 0, 'the taken time is gone');
    await axe(page, 'booking, slot taken');
    await screenshot(page, 'book-slot-taken');
    const list = await apiCall('/api/v1/staff/bookings?email=lee@example.com', { token: adminToken });
    assert(list.body.total === 0, 'nothing booked for the second patient');
    await page.close();
  });

  await journey('the "Book now" dialog: focus trapped, Esc closes, focus returns', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${hostOrigin}/button`);
    const open = page.getByRole('button', { name: 'Book now' });
    await open.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Book an appointment' });
    await dialog.waitFor();
    const frame = page.frameLocator('dialog iframe');
    await frame.getByRole('heading', { name: 'Choose a service' }).waitFor();
    await screenshot(page, 'embed-dialog');
    // Tab from the close button goes into the frame, never to the page behind.
    await page.keyboard.press('Tab');
    const inFrame = await page.evaluate(() => document.activeElement?.tagName);
    assert(inFrame === 'IFRAME', `focus in the frame, got ${inFrame}`);
    // Esc inside the frame closes the dialog, and focus goes back to "Book now".
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert(await open.evaluate((el) => el === document.activeElement), 'focus back on Book now');
    // And Esc on the host page's part of the dialog does too.
    await page.keyboard.press('Enter');
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert(await open.evaluate((el) => el === document.activeElement), 'focus back on Book now again');
    await page.close();
  });

  await journey('the patient\'s own time zone shows beside the clinic\'s', async () => {
    const page = await context.newPage();
    await watch(page, 'America/New_York');
    await page.goto(`${base}/book?service=sports-massage`);
    await page.getByRole('heading', { name: /Who would you like to see\?|Choose a day/ }).first().waitFor();
    if (await page.getByLabel('First available').count()) {
      await page.getByLabel('First available').check();
      await page.getByRole('button', { name: 'Continue' }).click();
    }
    await page.getByText(/Your own time \(Eastern Standard Time\) is shown beside each time/).waitFor();
    await page.getByRole('button', { name: /^Next available/ }).click();
    await page.locator('.time-button .own-time').first().waitFor();
    await screenshot(page, 'book-time-other-zone');
    await page.getByText(/your time/).first().waitFor();
    await page.close();
  });

  await journey('360 px wide: no horizontal scroll on any page', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${base}/book`);
    await page.getByRole('heading', { name: 'Choose a service' }).waitFor();
    await noHorizontalScroll(page, '/book services');
    await page.getByLabel('Sports massage').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await chooseUpToDetails(page).then(() => noHorizontalScroll(page, '/book details'));
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('heading', { name: 'Choose a day' }).waitFor();
    await noHorizontalScroll(page, '/book days');
    await page.goto(`${base}/contact`);
    await noHorizontalScroll(page, '/contact');
    await page.goto(`${base}/manage/unknown`);
    await noHorizontalScroll(page, '/manage 404');
    if (manageLink) {
      await page.goto(manageLink);
      await noHorizontalScroll(page, '/manage');
    }
    await page.goto(`${hostOrigin}/`);
    await page.locator('iframe').waitFor();
    await noHorizontalScroll(page, 'host page with the embed');
    await page.close();
  });

  await classJourneys({
    context, base, adminToken, services, apiCall, journey, watch, axe, screenshot, docShot,
    noHorizontalScroll, mailLinks, assert, sleep,
  });

  await journey('no Content-Security-Policy violation or script error on any page', async () => {
    assert(cspViolations.length === 0, cspViolations.join('\n'));
  });
} catch (err) {
  failures += 1;
  results.push(`FAIL setup: ${err.stack || err}\n${serviceLog}`);
} finally {
  clearTimeout(timer);
  if (context) await context.close().catch(() => {});
  host.close();
  service.kill('SIGTERM');
  for (const line of results) log(line);
  log(`screenshots in ${path.relative(root, shots)}/`);
  writeFileSync(path.join(shots, 'results.txt'), `${results.join('\n')}\n`);
  if (!failures) rmSync(work, { recursive: true, force: true });
}
process.exit(failures ? 1 : 0);
