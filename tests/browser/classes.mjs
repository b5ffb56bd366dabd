// Patient journeys for classes and the waitlist, run by run.mjs with its browser, service and
// helpers: booking a seat from the timetable and cancelling it from the emailed link, joining
// the waitlist of a full class and claiming the place its offer email holds, joining the
// waitlist of a one-to-one day and leaving it, and the friendly 404 of an unknown link.

/**
 * t: {context, base, adminToken, services, apiCall, journey, watch, axe, screenshot, docShot,
 *     noHorizontalScroll, mailLinks, assert, sleep}
 */
export async function classJourneys(t) {
  const { context, base, adminToken, apiCall, journey, watch, axe, screenshot, docShot, assert, sleep } = t;
  // The demo timetable's Pilates class (two sessions a week); any class service otherwise.
  const classService = t.services.find((s) => s.slug === 'mat-pilates-class')
    || t.services.find((s) => (s.capacity ?? 1) > 1);

  /** Waits for a link under `prefix` in an email that mentions `mentions`. */
  async function linkFromMail(prefix, mentions) {
    for (let i = 0; i < 150; i += 1) {
      const [link] = t.mailLinks(prefix, mentions);
      if (link) return link;
      await sleep(200);
    }
    throw new Error(`no ${prefix} link in an email mentioning ${mentions}`);
  }

  /** A one-seat session of the class service, 2–9 days ahead in an evening its instructor is free. */
  async function fullClass() {
    const instructor = classService.practitioner_ids[0];
    const day = (n) => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);
    for (let n = 2; n <= 9; n += 1) {
      const made = await apiCall('/api/v1/staff/classes', {
        method: 'POST', token: adminToken,
        body: { service_id: classService.id, practitioner_id: instructor, starts_at: `${day(n)}T20:00:00Z`, capacity: 1 },
      });
      if (made.status !== 201) continue;
      const taken = await apiCall(`/api/v1/classes/${made.body.id}/seats`, {
        method: 'POST',
        body: { patient: { name: 'Ola Berg', email: 'ola@example.com' }, consent: { privacy: true, marketing: false } },
      });
      assert(taken.status === 201, `the one seat booked: ${taken.status} ${JSON.stringify(taken.body)}`);
      return { session: made.body, holder: taken.body };
    }
    throw new Error('no free evening for a class session');
  }

  let seatLink = null;

  await journey('book a seat in a class from the timetable', async () => {
    assert(classService, 'the demo clinic has a class service');
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${base}/book`);
    await page.getByRole('heading', { name: 'Choose a service' }).waitFor();
    await page.getByLabel(classService.name).check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Choose a class' }).waitFor();
    await page.locator('button.session-open').first().waitFor();
    await axe(page, 'booking, class timetable');
    await screenshot(page, 'class-timetable');
    const session = page.locator('button.session-open').first();
    const classId = await session.getAttribute('data-class');
    const before = (await apiCall(`/api/v1/staff/classes/${classId}`, { token: adminToken })).body;
    await session.click();
    await page.getByRole('heading', { name: 'Your details' }).waitFor();
    await page.getByText(/places? left|Choose another class/).first().waitFor();
    await page.getByLabel('Full name').fill('Nia Evans');
    await page.getByLabel('Email address').fill('nia@example.com');
    await page.getByLabel('Anything we should know? (optional)').fill('First Pilates class.');
    await page.getByLabel(/may keep my details/).check();
    await axe(page, 'booking, class details');
    await page.getByRole('button', { name: 'Confirm booking' }).click();
    await page.getByRole('heading', { name: 'Place booked' }).waitFor();
    const reference = (await page.locator('#reference').textContent()).trim();
    await page.getByText(/to move to another session, cancel and book another session/i).waitFor();
    await axe(page, 'booking, seat confirmed');
    await screenshot(page, 'class-booked');
    const after = (await apiCall(`/api/v1/staff/classes/${classId}`, { token: adminToken })).body;
    assert(after.seats_left === before.seats_left - 1, `one place fewer: ${before.seats_left} → ${after.seats_left}`);
    assert(after.seats.some((s) => s.reference === reference && s.status === 'confirmed' && s.patient.email === 'nia@example.com'),
      `the seat: ${JSON.stringify(after.seats)}`);
    seatLink = await linkFromMail('/manage/', reference);
    await page.close();
  });

  await journey('a seat\'s manage link: cancel it, no moving', async () => {
    assert(seatLink, 'needs the seat from the timetable journey');
    const token = seatLink.split('/').pop();
    const page = await context.newPage();
    await watch(page);
    const resp = await page.goto(seatLink);
    assert(resp.status() === 200, `manage page ${resp.status()}`);
    await page.getByRole('heading', { name: 'Your place in a class' }).waitFor();
    await page.getByText(/to move, cancel and book another session/).waitFor();
    assert(await page.getByRole('button', { name: 'Change the time' }).count() === 0, 'a seat is not moved');
    await axe(page, 'manage page, seat');
    await screenshot(page, 'manage-seat');
    await page.getByRole('button', { name: 'Cancel my place' }).click();
    await page.getByRole('heading', { name: 'Cancel your place?' }).waitFor();
    await page.getByLabel('Why are you cancelling? (optional)').fill('Away that week');
    await axe(page, 'manage page, cancel a seat');
    await page.getByRole('button', { name: 'Yes, cancel my place' }).click();
    await page.getByText('Your place is cancelled.').waitFor();
    await axe(page, 'manage page, seat cancelled');
    const managed = (await apiCall(`/api/v1/manage/${token}`)).body;
    assert(managed.seat?.status === 'cancelled' && !managed.booking, `cancelled seat: ${JSON.stringify(managed)}`);
    await page.reload();
    await page.getByRole('heading', { name: 'Your cancelled place' }).waitFor();
    await page.close();
  });

  let full = null;

  await journey('a full class is shown full, with its waitlist instead of booking', async () => {
    assert(classService, 'the demo clinic has a class service');
    full = await fullClass();
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${base}/book?service=${classService.slug}`);
    await page.getByRole('heading', { name: 'Choose a class' }).waitFor();
    const card = page.locator(`[data-class="${full.session.id}"]`);
    await card.getByText('Full').waitFor();
    assert(await card.evaluate((el) => el.tagName) === 'LI', 'a full class is not a booking button');
    await card.getByRole('button', { name: /^Join the waitlist for \d\d:\d\d on / }).waitFor();
    await axe(page, 'booking, timetable with a full class');
    await screenshot(page, 'class-timetable-full');
    await docShot(page, 'classes');
    await page.close();
  });

  await journey('a full class: join its waitlist, then claim the place its offer email holds', async () => {
    assert(full, 'needs the full class of the journey before');
    const { session, holder } = full;
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${base}/book?service=${classService.slug}`);
    await page.getByRole('heading', { name: 'Choose a class' }).waitFor();
    const card = page.locator(`[data-class="${session.id}"]`);
    await card.getByRole('button', { name: /Join the waitlist/ }).click();
    await page.getByRole('heading', { name: 'Join the waitlist' }).waitFor();
    await page.getByText('This class is full.').waitFor();
    await page.getByLabel('Full name').fill('Wren Patel');
    await page.getByLabel('Email address').fill('wren@example.com');
    await page.getByLabel(/may keep my details/).check();
    await axe(page, 'waitlist, details');
    await page.getByRole('button', { name: 'Join the waitlist' }).click();
    await page.getByRole('heading', { name: 'You are on the waitlist' }).waitFor();
    await axe(page, 'waitlist, joined');
    await screenshot(page, 'waitlist-joined');
    await page.getByRole('link', { name: 'View or leave the waitlist' }).click();
    await page.getByRole('heading', { name: 'You are on the waitlist' }).waitFor();
    assert(new URL(page.url()).pathname.startsWith('/waitlist/'), `the entry page: ${page.url()}`);
    await axe(page, 'waitlist entry page');
    await screenshot(page, 'waitlist-entry');
    // The holder cancels: after the grace period the place is offered to Wren by email.
    const cancelled = await apiCall(`/api/v1/manage/${holder.manage_token}/cancel`, { method: 'POST', body: { reason: 'Cannot come' } });
    assert(cancelled.status === 200, `the holder cancels: ${cancelled.status} ${JSON.stringify(cancelled.body)}`);
    const offerLink = await linkFromMail('/waitlist/offers/', 'wren@example.com');
    assert(offerLink.startsWith(`${base}/waitlist/offers/`), `offer link under public_url: ${offerLink}`);
    const resp = await page.goto(offerLink);
    assert(resp.status() === 200, `offer page ${resp.status()}`);
    await page.getByRole('heading', { name: 'A place is free for you' }).waitFor();
    await page.getByText(/Held for you until/).waitFor();
    await axe(page, 'waitlist offer');
    await screenshot(page, 'waitlist-offer');
    await docShot(page, 'waitlist-offer');
    // Held: nobody else can book it meanwhile.
    const listed = (await apiCall(`/api/v1/classes?from=${session.local_start.slice(0, 10)}&to=${session.local_start.slice(0, 10)}&service_id=${classService.id}`))
      .body.items.find((c) => c.id === session.id);
    assert(listed.seats_left === 0, `the held place is not on sale: ${JSON.stringify(listed)}`);
    await page.getByRole('button', { name: 'Claim this place' }).click();
    await page.getByRole('heading', { name: 'Place booked' }).waitFor();
    await page.getByText('You claimed this place from the waitlist.').waitFor();
    await axe(page, 'waitlist offer, claimed');
    await screenshot(page, 'waitlist-claimed');
    const detail = (await apiCall(`/api/v1/staff/classes/${session.id}`, { token: adminToken })).body;
    assert(detail.seats.some((s) => s.patient.email === 'wren@example.com' && s.status === 'confirmed'),
      `Wren has the seat: ${JSON.stringify(detail.seats)}`);
    // The link again: the offer is spent.
    await page.goto(offerLink);
    await page.getByRole('heading', { name: 'You have claimed this place' }).waitFor();
    await page.close();
  });

  await journey('a one-to-one day without times: join its waitlist, then leave it', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.goto(`${base}/book?service=physio-follow-up&practitioner=amara-okafor`);
    await page.getByRole('heading', { name: 'Choose a day' }).waitFor();
    // A later day than today, so the whole day is still ahead.
    const empty = page.locator('button.day-waitlist').last();
    const day = await empty.getAttribute('data-day');
    await empty.click();
    await page.getByRole('heading', { name: 'When could you come?' }).waitFor();
    await page.getByLabel('Only between certain times').check();
    await page.getByLabel('From').selectOption('10:00');
    await page.getByLabel('Until').selectOption('09:00');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').getByText('There is a problem').waitFor();
    await axe(page, 'waitlist, when, with an error');
    await screenshot(page, 'waitlist-when');
    await page.getByLabel('Until').selectOption('14:00');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Join the waitlist' }).waitFor();
    await page.getByText(/between 10:00 and 14:00/).waitFor();
    await page.getByLabel('Full name').fill('Sam Okoro');
    await page.getByLabel('Email address').fill('sam@example.com');
    await page.getByLabel(/may keep my details/).check();
    await page.getByRole('button', { name: 'Join the waitlist' }).click();
    await page.getByRole('heading', { name: 'You are on the waitlist' }).waitFor();
    const entryUrl = await page.getByRole('link', { name: 'View or leave the waitlist' }).getAttribute('href');
    const entry = await apiCall(`/api/v1/waitlist/${entryUrl.split('/').pop()}`);
    assert(entry.status === 200 && entry.body.entry.status === 'waiting', `the entry: ${JSON.stringify(entry.body)}`);
    assert(JSON.stringify(entry.body).includes(day), `for ${day}: ${JSON.stringify(entry.body)}`);
    await page.goto(entryUrl);
    await page.getByRole('button', { name: 'Leave the waitlist' }).click();
    await page.getByRole('heading', { name: 'Leave the waitlist?' }).waitFor();
    await axe(page, 'waitlist, leave?');
    await page.getByRole('button', { name: 'Yes, leave the waitlist' }).click();
    await page.getByRole('heading', { name: 'You have left the waitlist' }).waitFor();
    await axe(page, 'waitlist, left');
    const left = await apiCall(`/api/v1/waitlist/${entryUrl.split('/').pop()}`);
    assert(left.body.entry.status === 'left', `left: ${JSON.stringify(left.body)}`);
    await page.close();
  });

  await journey('unknown waitlist and offer links get the friendly page with the phone', async () => {
    const page = await context.newPage();
    await watch(page);
    for (const [path, heading] of [
      ['/waitlist/no-such-token', 'We could not find that waitlist place'],
      ['/waitlist/offers/no-such-token', 'We could not find that offer'],
    ]) {
      const resp = await page.goto(`${base}${path}`);
      assert(resp.status() === 404, `${path}: status ${resp.status()}`);
      await page.getByRole('heading', { name: heading }).waitFor();
      await page.getByRole('main').getByRole('link', { name: '020 7946 0000' }).waitFor();
      await axe(page, `${path} not found`);
    }
    await screenshot(page, 'offer-not-found');
    await page.close();
  });

  await journey('360 px wide: the timetable and the waitlist pages', async () => {
    const page = await context.newPage();
    await watch(page);
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${base}/book?service=${classService.slug}`);
    await page.getByRole('heading', { name: 'Choose a class' }).waitFor();
    await page.locator('.session').first().waitFor();
    await t.noHorizontalScroll(page, '/book timetable');
    await page.goto(`${base}/book?service=physio-follow-up&practitioner=amara-okafor`);
    await page.locator('button.day-waitlist').first().click();
    await page.getByRole('heading', { name: 'When could you come?' }).waitFor();
    await page.getByLabel('Only between certain times').check();
    await t.noHorizontalScroll(page, '/book waitlist times');
    for (const path of ['/waitlist/unknown', '/waitlist/offers/unknown']) {
      await page.goto(`${base}${path}`);
      await t.noHorizontalScroll(page, path);
    }
    await page.close();
  });
}
