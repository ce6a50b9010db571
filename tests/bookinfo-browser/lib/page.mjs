// Reading and driving bookinfo's product page in Chromium through playwright-core. Element ids and
// classes are the page contract of samples/bookinfo-dotnet (book-title, details, reviews, review,
// reviewer, stars[data-color][data-count], ratings-error, reviews-version[data-version],
// reviews-error, sign-in, signed-in-user, sign-out; identities: details-caller, reviews-caller and
// ratings-caller with data-caller, data-status, data-rate-limited).
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export async function launchChromium() {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`Chromium not found at ${chromiumPath}: install Debian's package with "apt-get install -y chromium" (or set CHROMIUM_PATH).`);
  }
  return chromium.launch({ executablePath: chromiumPath, headless: true });
}

/**
 * What the product page currently shows, read from the DOM.
 * @returns {Promise<{title: string|null, detailsRows: Record<string,string>, reviews: {text: string, reviewer: string,
 *   stars: {color: string|null, count: number, glyphs: number}|null, ratingsError: string|null}[],
 *   version: string|null, reviewsError: string|null, signedInUser: string|null, signInButton: boolean}>}
 */
export async function readState(page) {
  return page.evaluate(() => {
    const text = (el) => (el ? el.textContent.trim() : null);
    const detailsRows = {};
    for (const row of document.querySelectorAll('#details tr')) {
      const th = row.querySelector('th');
      const td = row.querySelector('td');
      if (th && td) detailsRows[th.textContent.trim().replace(/:$/, '')] = td.textContent.trim();
    }
    const reviews = [...document.querySelectorAll('#reviews .review')].map((review) => {
      const stars = review.querySelector('.stars');
      return {
        text: text(review.querySelector('blockquote')) ?? review.textContent.trim(),
        reviewer: text(review.querySelector('.reviewer')),
        stars: stars
          ? {
              color: stars.getAttribute('data-color'),
              count: Number(stars.getAttribute('data-count')),
              glyphs: [...stars.textContent].filter((c) => c === '\u2605').length,
            }
          : null,
        ratingsError: text(review.querySelector('.ratings-error')),
      };
    });
    const version = document.querySelector('#reviews-version');
    const hop = (id) => {
      const el = document.getElementById(id);
      return el
        ? {
            caller: el.getAttribute('data-caller'),
            status: el.getAttribute('data-status'),
            rateLimited: el.getAttribute('data-rate-limited'),
            text: el.textContent.trim(),
          }
        : null;
    };
    return {
      detailsError: text(document.querySelector('#details-error')),
      identities: { details: hop('details-caller'), reviews: hop('reviews-caller'), ratings: hop('ratings-caller') },
      title: text(document.querySelector('#book-title')),
      detailsRows,
      reviews,
      version: version ? version.getAttribute('data-version') : null,
      reviewsError: text(document.querySelector('#reviews-error')),
      signedInUser: text(document.querySelector('#signed-in-user')),
      signInButton: document.querySelector('#sign-in') !== null,
    };
  });
}

/** Loads url in page and returns the elapsed milliseconds and the page state. */
export async function load(page, url, timeoutMs = 20000) {
  const started = performance.now();
  const response = await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
  const ms = Math.round(performance.now() - started);
  if (!response || response.status() !== 200) {
    throw new Error(`GET ${url} answered ${response ? response.status() : 'nothing'}`);
  }
  return { ms, state: await readState(page) };
}

/** Loads url in page whatever the status; returns { status, body } (the page's visible text). */
export async function loadAny(page, url, timeoutMs = 20000) {
  const response = await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
  return { status: response ? response.status() : null, body: (await page.evaluate(() => document.body?.innerText ?? '')).trim() };
}

/**
 * Reloads until predicate(state) holds on `consecutive` loads in a row, at most until timeoutMs.
 * Returns the number of loads it took; throws with the last state seen when the bound is reached.
 */
export async function waitForState(page, url, predicate, { what, consecutive = 1, timeoutMs = 20000, pauseMs = 100 } = {}) {
  const deadline = performance.now() + timeoutMs;
  let streak = 0;
  let loads = 0;
  let last = null;
  while (performance.now() < deadline) {
    loads++;
    ({ state: last } = await load(page, url, Math.max(1000, Math.min(20000, deadline - performance.now() + 10000))));
    streak = predicate(last) ? streak + 1 : 0;
    if (streak >= consecutive) return loads;
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  throw new Error(
    `Not reached within ${timeoutMs} ms (${loads} loads): ${what ?? predicate.toString()}.\nLast state: ${JSON.stringify(last)}`,
  );
}

/** Signs in through the page's form (username, any password, "Sign in"), as a reader would. */
export async function signIn(page, url, user) {
  await page.goto(url, { waitUntil: 'load' });
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="passwd"]', 'password');
  await page.click('#sign-in');
  await page.waitForSelector('#signed-in-user', { timeout: 20000 });
}

/** Signs out with the page's "Sign out" control. */
export async function signOut(page, url) {
  await page.goto(url, { waitUntil: 'load' });
  await page.click('#sign-out');
  await page.waitForSelector('#sign-in', { timeout: 20000 });
}

/** Full-page screenshots into one folder, numbered in the order they are taken. */
export class Screenshots {
  #count = 0;

  constructor(dir) {
    this.dir = path.resolve(dir);
    fs.mkdirSync(this.dir, { recursive: true });
    for (const old of fs.readdirSync(this.dir)) {
      if (old.endsWith('.png')) fs.rmSync(path.join(this.dir, old));
    }
    this.saved = [];
  }

  async take(page, name) {
    this.#count++;
    const file = path.join(this.dir, `${String(this.#count).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    this.saved.push(file);
    return file;
  }
}
