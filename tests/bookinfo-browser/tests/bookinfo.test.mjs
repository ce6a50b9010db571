// Istio's bookinfo tasks (request routing, fault injection, traffic shifting, then mutual TLS,
// authorization, the ratings denial and the ratings rate limit) against the real
// samples/bookinfo-dotnet launcher, seen through headless Chromium. One launcher and one browser for
// the whole file. Scenarios run in the walkthrough's order (samples/bookinfo-dotnet/README.md) and apply
// rules as it does: each `cp` puts a file on top of what the folder holds (the newest definition of a
// resource is in force, as with kubectl apply), `rm` undoes. Each scenario first checks the folder holds
// what the previous one left and rebuilds that state if not, so one failure does not change what the next
// one tests.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { securityDir, startBookinfo } from '../lib/launcher.mjs';
import { launchChromium, load, loadAny, readState, Screenshots, signIn, signOut, waitForState } from '../lib/page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const screenshotDir = process.env.BOOKINFO_SCREENSHOTS || path.resolve(here, '../screenshots');

const unavailable = 'Sorry, product reviews are currently unavailable for this book.';
const ratingsUnavailable = 'Ratings service is currently unavailable';
const expectedReviewers = ['Reviewer1', 'Reviewer2'];
const expectedStars = [5, 4]; // the original's ratings: Reviewer1 5, Reviewer2 4
const starColor = { v2: 'black', v3: 'red' };

// A rule change is observed within this bound (watcher debounce + xDS push + a page load).
const effectTimeoutMs = 20000;

let bookinfo;
let browser;
let shots;
let reader; // signed-out browsing context
let jason; // browsing context that signs in as jason
let url;

/** Asserts the page shows the book, its details and both reviews as served by `state.version`. */
function assertBookWithReviews(state, context = '') {
  const where = `${context} ${JSON.stringify(state)}`;
  assert.equal(state.title, 'The Comedy of Errors', `book title ${where}`);
  assert.equal(state.detailsRows['ISBN-10'], '1234567890', `details table ${where}`);
  assert.equal(state.reviewsError, null, `no reviews error ${where}`);
  assert.deepEqual(state.reviews.map((r) => r.reviewer), expectedReviewers, `two reviews ${where}`);
  assert.ok(['v1', 'v2', 'v3'].includes(state.version), `served-by marker names v1, v2 or v3 ${where}`);
}

/** Stars as the answering reviews version draws them: v1 none, v2 black, v3 red, with the original's counts. */
function assertStarsMatchVersion(state, context = '') {
  const where = `${context} ${JSON.stringify(state)}`;
  state.reviews.forEach((review, i) => {
    assert.equal(review.ratingsError, null, `no ratings error ${where}`);
    if (state.version === 'v1') {
      assert.equal(review.stars, null, `v1 shows no stars ${where}`);
    } else {
      assert.deepEqual(
        review.stars,
        { color: starColor[state.version], count: expectedStars[i], glyphs: expectedStars[i] },
        `${state.version} shows ${expectedStars[i]} ${starColor[state.version]} stars for ${review.reviewer} ${where}`,
      );
    }
  });
}

const productpageId = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
const reviewsId = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const rbacDenied = 'RBAC: access denied';
const detailsUnavailable = 'Sorry, product details are currently unavailable for this book.';

/** "Who called whom": details and reviews saw productpage's SPIFFE id, ratings saw reviews' (v1 does not call it). */
function assertMeshIdentities(state, context = '') {
  const where = `${context} ${JSON.stringify(state.identities)}`;
  assert.deepEqual(state.identities.details, {
    caller: productpageId, status: '200', rateLimited: '', text: `details saw productpage as ${productpageId} (mutual TLS)`,
  }, `details ${where}`);
  assert.deepEqual(state.identities.reviews, {
    caller: productpageId, status: '200', rateLimited: '', text: `reviews saw productpage as ${productpageId} (mutual TLS)`,
  }, `reviews ${where}`);
  assert.deepEqual(state.identities.ratings, state.version === 'v1'
    ? { caller: '', status: 'not-called', rateLimited: '', text: 'reviews-v1 does not call ratings' }
    : { caller: reviewsId, status: '200', rateLimited: '', text: `ratings saw reviews-${state.version} as ${reviewsId} (mutual TLS)` },
  `ratings ${where}`);
}

/** Sends plaintext HTTP/1.1 on a fresh connection; resolves with the number of bytes that came back before it closed. */
function plaintextBytes(workloadUrl) {
  const { hostname, port } = new URL(workloadUrl);
  return new Promise((resolve) => {
    let bytes = 0;
    const socket = net.connect({ host: hostname, port: Number(port) }, () =>
      socket.write(`GET /health HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`));
    socket.setTimeout(15000, () => socket.destroy());
    socket.on('data', (chunk) => (bytes += chunk.length));
    socket.on('error', () => {});
    socket.on('close', () => resolve(bytes));
  });
}

async function waitFor(check, what, timeoutMs = effectTimeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Not reached within ${timeoutMs} ms: ${what}`);
}

describe('bookinfo-dotnet in Chromium', { concurrency: false }, () => {
  before(async () => {
    shots = new Screenshots(screenshotDir);
    const started = performance.now();
    bookinfo = await startBookinfo({ logFile: path.join(shots.dir, 'launcher.log') });
    url = bookinfo.productPageUrl;
    console.log(`Bookinfo ready at ${url} after ${Math.round(performance.now() - started)} ms`);
    browser = await launchChromium();
    reader = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    jason = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  }, { timeout: 150000 });

  after(async () => {
    await browser?.close().catch(() => {});
    if (bookinfo) {
      const stopped = await bookinfo.stop();
      console.log(`Launcher stopped: code ${stopped.code}, signal ${stopped.signal}, clean ${stopped.clean}`);
    }
    if (shots) {
      console.log(`Screenshots saved to ${shots.dir}`);
    }
  }, { timeout: 40000 });

  it('default page shows the book and its reviews, round robin over reviews v1, v2 and v3', { timeout: 60000 }, async () => {
    // The sample's own config folder as copied at start (no routing rules).
    const seen = new Map();
    let first = null;
    for (let i = 0; i < 12; i++) {
      const { state } = await load(reader, url);
      assertBookWithReviews(state, `load ${i + 1}`);
      assertStarsMatchVersion(state, `load ${i + 1}`);
      assert.equal(state.signedInUser, null);
      assert.ok(state.signInButton, 'the Sign in button is on the page');
      seen.set(state.version, (seen.get(state.version) ?? 0) + 1);
      if (i === 0) {
        first = state;
        await shots.take(reader, 'default');
      }
    }
    assert.deepEqual(first.detailsRows, {
      Type: 'paperback',
      Pages: '200',
      Publisher: 'PublisherA',
      Language: 'English',
      'ISBN-10': '1234567890',
      'ISBN-13': '123-1234567890',
    });
    assert.ok(seen.size >= 2, `without rules reviews are balanced over its versions; 12 loads saw only ${JSON.stringify([...seen])}`);
  });

  it('service graph dashboard: every bookinfo service and version drawn with a non-zero rate', { timeout: 90000 }, async () => {
    // Still no routing rules: page loads reach productpage, details, reviews v1/v2/v3 and (from v2 and v3) ratings.
    assert.match(bookinfo.dashboardUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/, 'the launcher printed the dashboard URL');
    const expected = ['productpage/v1', 'details/v1', 'reviews/v1', 'reviews/v2', 'reviews/v3', 'ratings/v1'];
    const dashboard = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      await dashboard.goto(bookinfo.dashboardUrl, { waitUntil: 'load', timeout: 20000 });
      let rates = {};
      const deadline = performance.now() + 60000;
      while (performance.now() < deadline) {
        // Traffic keeps coming while the control plane scrapes the workloads (every 2 s) and the page refreshes.
        for (let i = 0; i < 3; i++) await load(reader, url);
        rates = await dashboard.evaluate(() => Object.fromEntries(
          [...document.querySelectorAll('g.node[data-service][data-version]')].map((g) => [
            `${g.getAttribute('data-service')}/${g.getAttribute('data-version')}`,
            parseFloat(g.querySelector('text.rate')?.textContent ?? 'NaN'),
          ])));
        if (expected.every((k) => rates[k] > 0)) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      for (const k of expected) {
        assert.ok(rates[k] > 0, `dashboard node ${k} has a non-zero rate; nodes seen: ${JSON.stringify(rates)}`);
      }
      await shots.take(dashboard, 'service-graph-dashboard');
    } finally {
      await dashboard.close();
    }
  });

  it('request routing: destination-rule-all, then virtual-service-all-v1: no stars on 20 reloads', { timeout: 60000 }, async () => {
    bookinfo.expectRules([]);
    // cp $n/destination-rule-all.yaml $c/ (subsets only: nothing changes yet), then cp $n/virtual-service-all-v1.yaml $c/
    bookinfo.apply('destination-rule-all');
    bookinfo.apply('virtual-service-all-v1');
    await waitForState(reader, url, (s) => s.version === 'v1', {
      what: 'reviews v1 on 6 loads in a row',
      consecutive: 6,
      timeoutMs: effectTimeoutMs,
    });
    for (let i = 0; i < 20; i++) {
      const { state } = await load(reader, url);
      assertBookWithReviews(state, `reload ${i + 1}`);
      assert.equal(state.version, 'v1', `reload ${i + 1} served by reviews v1`);
      assert.ok(state.reviews.every((r) => r.stars === null && r.ratingsError === null), `reload ${i + 1}: no stars`);
    }
    await shots.take(reader, 'all-v1-no-stars');
  });

  it('virtual-service-reviews-test-v2 on top of all-v1: jason sees black stars, signed out none', { timeout: 60000 }, async () => {
    bookinfo.expectRules(['destination-rule-all', 'virtual-service-all-v1']);
    // cp $n/virtual-service-reviews-test-v2.yaml $c/: a second VirtualService 'reviews', newer, so in force.
    // Jason got v1 from all-v1 until now: v2 shows the newer file's definition is used.
    bookinfo.apply('virtual-service-reviews-test-v2');
    await signIn(jason, url, 'jason');
    assert.equal((await readState(jason)).signedInUser, 'jason');
    await waitForState(jason, url, (s) => s.version === 'v2', {
      what: 'jason served by reviews v2 on 3 loads in a row',
      consecutive: 3,
      timeoutMs: effectTimeoutMs,
    });
    for (let i = 0; i < 5; i++) {
      const { state } = await load(jason, url);
      assertBookWithReviews(state, `jason reload ${i + 1}`);
      assert.equal(state.signedInUser, 'jason');
      assert.equal(state.version, 'v2', `jason reload ${i + 1} served by reviews v2`);
      assertStarsMatchVersion(state, `jason reload ${i + 1}`);
    }
    await shots.take(jason, 'test-v2-jason-black-stars');

    await signOut(jason, url);
    for (let i = 0; i < 5; i++) {
      const { state } = await load(jason, url);
      assertBookWithReviews(state, `signed-out reload ${i + 1}`);
      assert.equal(state.signedInUser, null, 'signed out');
      assert.equal(state.version, 'v1', `signed-out reload ${i + 1} served by reviews v1`);
      assert.ok(state.reviews.every((r) => r.stars === null), `signed-out reload ${i + 1}: no stars`);
    }
    await shots.take(jason, 'test-v2-signed-out-no-stars');
  });

  it('virtual-service-ratings-test-delay on top of test-v2: jason gets the reviews-unavailable message after about 6 s, others are fast', { timeout: 90000 }, async () => {
    // Fault injection task, on the request routing rules: jason is sent to reviews v2, which calls ratings;
    // cp $n/virtual-service-ratings-test-delay.yaml $c/ delays ratings 7 s for him.
    bookinfo.expectRules(['destination-rule-all', 'virtual-service-all-v1', 'virtual-service-reviews-test-v2']);
    bookinfo.apply('virtual-service-ratings-test-delay');
    if ((await readState(jason)).signedInUser !== 'jason') await signIn(jason, url, 'jason');
    await waitForState(jason, url, (s) => s.reviewsError === unavailable, {
      what: 'jason sees the reviews-unavailable message',
      timeoutMs: 45000,
      pauseMs: 0,
    });
    // productpage gives reviews 3 s and retries once: about 6 s, shorter than the 7 s delay.
    const { ms, state } = await load(jason, url, 20000);
    console.log(`delay: jason's page took ${ms} ms`);
    assert.equal(state.signedInUser, 'jason');
    assert.equal(state.reviewsError, unavailable, JSON.stringify(state));
    assert.equal(state.reviews.length, 0, 'no reviews shown with the error');
    assert.equal(state.title, 'The Comedy of Errors', 'the rest of the page is there');
    assert.equal(state.detailsRows['ISBN-10'], '1234567890', 'details still shown');
    assert.ok(ms >= 5000 && ms <= 9000, `jason's page took ${ms} ms, expected 5000-9000 (two 3 s tries)`);
    await shots.take(jason, 'delay-jason-reviews-unavailable');

    for (let i = 0; i < 3; i++) {
      const other = await load(reader, url);
      assertBookWithReviews(other.state, `signed-out load ${i + 1}`);
      assert.equal(other.state.version, 'v1', 'signed out: reviews v1');
      // Under 3 s: productpage's reviews timeout never fired, so the 7 s delay did not touch this call.
      assert.ok(other.ms < 3000, `a signed-out page took ${other.ms} ms, expected under 3000 (the delay is for jason only)`);
    }
    await shots.take(reader, 'delay-others-unaffected');
  });

  it('rm the delay, then virtual-service-ratings-test-abort: jason sees "Ratings service is currently unavailable"', { timeout: 60000 }, async () => {
    bookinfo.expectRules(['destination-rule-all', 'virtual-service-all-v1', 'virtual-service-reviews-test-v2', 'virtual-service-ratings-test-delay']);
    if ((await readState(jason)).signedInUser !== 'jason') await signIn(jason, url, 'jason');
    // Undo the delay (rm $c/virtual-service-ratings-test-delay.yaml): jason's black stars are back.
    bookinfo.remove('virtual-service-ratings-test-delay');
    await waitForState(jason, url, (s) => s.version === 'v2' && s.reviews.length > 0 && s.reviews.every((r) => r.stars?.color === 'black'), {
      what: 'jason served by reviews v2 with black stars after the delay rule is removed',
      timeoutMs: effectTimeoutMs,
    });
    // cp $n/virtual-service-ratings-test-abort.yaml $c/
    bookinfo.apply('virtual-service-ratings-test-abort');
    await waitForState(jason, url, (s) => s.reviews.length > 0 && s.reviews.every((r) => r.ratingsError !== null), {
      what: 'jason sees the ratings error in place of stars',
      timeoutMs: effectTimeoutMs,
    });
    for (let i = 0; i < 3; i++) {
      const { ms, state } = await load(jason, url);
      assertBookWithReviews(state, `jason load ${i + 1}`);
      assert.equal(state.version, 'v2', 'jason: reviews v2');
      for (const review of state.reviews) {
        assert.equal(review.ratingsError, ratingsUnavailable, `${review.reviewer}: ${JSON.stringify(state)}`);
        assert.equal(review.stars, null, `${review.reviewer}: no stars with the ratings error`);
      }
      assert.ok(ms < 3000, `the abort answers at once; jason's page took ${ms} ms`);
    }
    await shots.take(jason, 'abort-jason-ratings-unavailable');

    const { state } = await load(reader, url);
    assertBookWithReviews(state, 'signed out');
    assert.equal(state.version, 'v1', 'signed out: reviews v1');
    assert.ok(state.reviews.every((r) => r.stars === null && r.ratingsError === null), 'signed out: no stars, no ratings error');
  
    // Clean up as the walkthrough does, keeping the subsets:
    // rm $c/virtual-service-ratings-test-abort.yaml $c/virtual-service-reviews-test-v2.yaml $c/virtual-service-all-v1.yaml
    bookinfo.remove('virtual-service-ratings-test-abort', 'virtual-service-reviews-test-v2', 'virtual-service-all-v1');
  });

  it('traffic shifting: virtual-service-all-v1, then virtual-service-reviews-50-v3 on top: v1 and v3 each on 25-75 % of 40 reloads', { timeout: 60000 }, async () => {
    bookinfo.expectRules(['destination-rule-all']);
    // Start from all on v1 (cp $n/virtual-service-all-v1.yaml $c/) ...
    bookinfo.apply('virtual-service-all-v1');
    await waitForState(reader, url, (s) => s.version === 'v1', {
      what: 'reviews v1 on 6 loads in a row',
      consecutive: 6,
      timeoutMs: effectTimeoutMs,
    });
    // ... then move half of it to v3 (cp $n/virtual-service-reviews-50-v3.yaml $c/, a newer VirtualService 'reviews').
    bookinfo.apply('virtual-service-reviews-50-v3');
    // Under all-v1 a signed-out reader only ever got v1: v3 shows the newer rule is in force.
    await waitForState(reader, url, (s) => s.version === 'v3', {
      what: 'a page served by reviews v3',
      timeoutMs: effectTimeoutMs,
    });
    const counts = { v1: 0, v3: 0 };
    for (let i = 0; i < 40; i++) {
      const { state } = await load(reader, url);
      assertBookWithReviews(state, `reload ${i + 1}`);
      assert.ok(state.version === 'v1' || state.version === 'v3', `reload ${i + 1} served by v1 or v3, not ${state.version}`);
      assertStarsMatchVersion(state, `reload ${i + 1}`);
      counts[state.version]++;
      if (counts[state.version] === 1) await shots.take(reader, `50-v3-served-by-${state.version}`);
    }
    console.log(`50/50 v1/v3 over 40 reloads: v1 ${counts.v1}, v3 ${counts.v3}`);
    for (const v of ['v1', 'v3']) {
      assert.ok(counts[v] >= 10 && counts[v] <= 30, `${v} on ${counts[v]} of 40 reloads, expected 10-30 (25-75 %)`);
    }
  });

  it('mutual TLS: rm the traffic rules, peer-authentication-permissive then -strict: the page works and shows SPIFFE ids, plaintext to the backends gets no answer', { timeout: 90000 }, async () => {
    bookinfo.expectRules(['destination-rule-all', 'virtual-service-all-v1', 'virtual-service-reviews-50-v3']);
    // The security part starts from an empty config folder (rm -f $c/*.yaml).
    bookinfo.remove('destination-rule-all', 'virtual-service-all-v1', 'virtual-service-reviews-50-v3');
    // cp $s/peer-authentication-permissive.yaml $c/: plaintext still reaches details, seen as no identity.
    bookinfo.apply('peer-authentication-permissive');
    const details = bookinfo.workloads.get('details-v1').url;
    const plain = await fetch(`${details}/details/0`);
    assert.equal(plain.status, 200, 'PERMISSIVE: plaintext to details is served');
    assert.equal(plain.headers.get('x-bookinfo-caller'), 'none (plaintext)');
    await waitForState(reader, url, (s) => s.version === 'v2', { what: 'a page served by reviews v2', timeoutMs: effectTimeoutMs });
    assertMeshIdentities(await readState(reader), 'PERMISSIVE');

    // cp $s/peer-authentication-strict.yaml $c/: STRICT mesh-wide, productpage kept PERMISSIVE (the browser has no certificate).
    bookinfo.apply('peer-authentication-strict');
    await waitFor(async () => (await plaintextBytes(details)) === 0, 'details closes plaintext connections without a byte');
    for (const name of ['details-v1', 'ratings-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3']) {
      assert.equal(await plaintextBytes(bookinfo.workloads.get(name).url), 0, `${name} answered plaintext under STRICT`);
    }
    const seen = new Set();
    for (let i = 0; i < 6; i++) {
      const { state } = await load(reader, url);
      assertBookWithReviews(state, `STRICT load ${i + 1}`);
      assertStarsMatchVersion(state, `STRICT load ${i + 1}`);
      assertMeshIdentities(state, `STRICT load ${i + 1}`);
      if (state.version === 'v2' && !seen.has('v2')) await shots.take(reader, 'strict-identities');
      seen.add(state.version);
    }
    assert.deepEqual([...seen].sort(), ['v1', 'v2', 'v3'], 'round robin over the three versions under STRICT');
  });

  it('authorization: allow-nothing, productpage-viewer, backends-viewer; the sign-in POST gets RBAC: access denied', { timeout: 90000 }, async () => {
    bookinfo.expectRules(['peer-authentication-permissive', 'peer-authentication-strict']);
    // cp $s/authorization-allow-nothing.yaml $c/
    bookinfo.apply('authorization-allow-nothing');
    await waitFor(async () => (await loadAny(reader, url)).status === 403, 'the page answers 403');
    assert.deepEqual(await loadAny(reader, url), { status: 403, body: rbacDenied });
    await shots.take(reader, 'allow-nothing-rbac-denied');

    // cp $s/authorization-productpage-viewer.yaml $c/: GET on productpage only; details and reviews still allow nothing.
    bookinfo.apply('authorization-productpage-viewer');
    await waitFor(async () => (await loadAny(reader, url)).status === 200, 'the page answers 200');
    const { state } = await load(reader, url);
    assert.equal(state.title, 'The Comedy of Errors');
    assert.equal(state.detailsError, detailsUnavailable, JSON.stringify(state));
    assert.equal(state.reviewsError, unavailable, JSON.stringify(state));
    assert.deepEqual(state.identities.details, { caller: '', status: '403', rateLimited: '', text: 'details refused productpage: 403' });
    assert.deepEqual(state.identities.reviews, { caller: '', status: '403', rateLimited: '', text: 'reviews refused productpage: 403' });
    await shots.take(reader, 'productpage-viewer-backends-denied');
    // The Sign in form posts: not a GET, so denied.
    await reader.fill('input[name="username"]', 'jason');
    const [post] = await Promise.all([reader.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'), reader.click('#sign-in')]);
    await reader.waitForLoadState('load');
    assert.equal(post.status(), 403, 'POST /login under productpage-viewer');
    assert.equal((await reader.evaluate(() => document.body.innerText)).trim(), rbacDenied);
    await shots.take(reader, 'productpage-viewer-post-denied');

    // cp $s/authorization-backends-viewer.yaml $c/: details and reviews for productpage's identity, ratings for reviews'.
    bookinfo.apply('authorization-backends-viewer');
    await waitForState(reader, url, (s) => s.reviewsError === null && s.detailsError === null, {
      what: 'details and reviews back on 3 loads in a row',
      consecutive: 3,
      timeoutMs: effectTimeoutMs,
    });
    for (let i = 0; i < 6; i++) {
      const { state: back } = await load(reader, url);
      assertBookWithReviews(back, `backends-viewer load ${i + 1}`);
      assertStarsMatchVersion(back, `backends-viewer load ${i + 1}`);
      assertMeshIdentities(back, `backends-viewer load ${i + 1}`);
    }
    await shots.take(reader, 'backends-viewer-everything-back');

    // rm $c/authorization-backends-viewer.yaml $c/authorization-productpage-viewer.yaml $c/authorization-allow-nothing.yaml
    bookinfo.remove('authorization-backends-viewer', 'authorization-productpage-viewer', 'authorization-allow-nothing');
  });

  it('ratings denial: authorization-deny-ratings-to-reviews: reviews v2 and v3 (one service account) show "Ratings service is currently unavailable"', { timeout: 60000 }, async () => {
    bookinfo.expectRules(['peer-authentication-permissive', 'peer-authentication-strict']);
    // cp $s/authorization-deny-ratings-to-reviews.yaml $c/
    bookinfo.apply('authorization-deny-ratings-to-reviews');
    await waitForState(reader, url, (s) => s.version !== 'v1' && s.reviews.every((r) => r.ratingsError === ratingsUnavailable), {
      what: 'reviews v2 or v3 with the ratings error',
      timeoutMs: effectTimeoutMs,
    });
    const seen = new Set();
    const shot = new Set();
    for (let i = 0; i < 6; i++) {
      const { state } = await load(reader, url);
      assertBookWithReviews(state, `deny load ${i + 1}`);
      seen.add(state.version);
      if (state.version === 'v1') {
        assert.ok(state.reviews.every((r) => r.stars === null && r.ratingsError === null), `v1 unchanged ${JSON.stringify(state)}`);
        continue;
      }
      for (const review of state.reviews) {
        assert.equal(review.ratingsError, ratingsUnavailable, `${state.version} ${review.reviewer}: ${JSON.stringify(state)}`);
        assert.equal(review.stars, null);
      }
      assert.deepEqual(state.identities.ratings, { caller: '', status: '403', rateLimited: '', text: `ratings refused reviews-${state.version}: 403` });
      if (!shot.has(state.version)) {
        shot.add(state.version);
        await shots.take(reader, `deny-ratings-${state.version}`);
      }
    }
    assert.deepEqual([...seen].sort(), ['v1', 'v2', 'v3']);
    // rm $c/authorization-deny-ratings-to-reviews.yaml
    bookinfo.remove('authorization-deny-ratings-to-reviews');
  });

  it('rate limit: ratings-local-ratelimit: after the bucket (max_tokens) reviews v2 and v3 show the ratings error and "ratings refused ...: 429 (x-local-rate-limit: true)"', { timeout: 60000 }, async () => {
    bookinfo.expectRules(['peer-authentication-permissive', 'peer-authentication-strict']);
    const tokens = Number(/max_tokens:\s*(\d+)/.exec(fs.readFileSync(path.join(securityDir, 'ratings-local-ratelimit.yaml'), 'utf8'))[1]);
    // cp $s/ratings-local-ratelimit.yaml $c/, then let the listener reach ratings before the first call.
    bookinfo.apply('ratings-local-ratelimit');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Each page served by v2 or v3 costs ratings one request: the first `tokens` of them show stars.
    let starred = 0;
    let state;
    for (let i = 0; i < 3 * tokens + 6; i++) {
      ({ state } = await load(reader, url));
      assertBookWithReviews(state, `rate limit load ${i + 1}`);
      if (state.version === 'v1') continue;
      if (state.reviews.every((r) => r.ratingsError === null)) {
        assertStarsMatchVersion(state, `rate limit load ${i + 1}`);
        starred++;
      } else {
        break;
      }
    }
    assert.equal(starred, tokens, `pages with stars before the limit: ${starred}, expected max_tokens ${tokens}; last ${JSON.stringify(state)}`);
    const seen = new Set();
    for (let i = 0; i < 6; i++) {
      ({ state } = await load(reader, url));
      assertBookWithReviews(state, `limited load ${i + 1}`);
      seen.add(state.version);
      if (state.version === 'v1') continue;
      for (const review of state.reviews) {
        assert.equal(review.ratingsError, ratingsUnavailable, `${state.version} ${review.reviewer}: ${JSON.stringify(state)}`);
      }
      assert.deepEqual(state.identities.ratings, {
        caller: '', status: '429', rateLimited: 'true', text: `ratings refused reviews-${state.version}: 429 (x-local-rate-limit: true)`,
      });
      if (!seen.has(`shot-${state.version}`)) {
        seen.add(`shot-${state.version}`);
        await shots.take(reader, `rate-limit-${state.version}`);
      }
    }
    assert.ok(seen.has('v2') && seen.has('v3'), `both v2 and v3 seen limited: ${[...seen]}`);
    // rm $c/ratings-local-ratelimit.yaml: the stars are back at once.
    bookinfo.remove('ratings-local-ratelimit');
    await waitForState(reader, url, (s) => s.version !== 'v1' && s.reviews.every((r) => r.stars !== null), {
      what: 'stars back on reviews v2 or v3',
      timeoutMs: effectTimeoutMs,
    });
  });
});
