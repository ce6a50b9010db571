// Starts the real bookinfo launcher (control plane + six workload processes) on ephemeral ports
// with a private copy of the sample's config folder, applies Istio rules as the walkthrough does (cp a
// file of samples/bookinfo-dotnet/networking or security into that folder on top of what is there, rm to undo), and
// stops everything at the end.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const sampleDir = path.join(repoRoot, 'samples/bookinfo-dotnet');
export const networkingDir = path.join(sampleDir, 'networking');
export const securityDir = path.join(sampleDir, 'security');
export const defaultLauncherDll = path.join(sampleDir, 'launcher/bin/Release/net10.0/Bookinfo.Launcher.dll');

const readyLine = /^Bookinfo is ready: (http:\/\/127\.0\.0\.1:\d+\/productpage)\s*$/;
const dashboardLine = /^Service graph dashboard: (http:\/\/127\.0\.0\.1:\d+\/)\s*$/;
const workloadLine = /^workload (\S+) pid=(\d+) url=(\S+)(?: metrics=(\S+))?\s*$/;
const keptLines = 400;
// How far a copy's write time is set after the newest rule file when the clock has not moved past it.
const mtimeStepMs = 10;

/**
 * A running launcher. Create with {@link startBookinfo}; always call {@link Bookinfo#stop}.
 */
export class Bookinfo {
  /** @type {import('node:child_process').ChildProcess} */
  #child;
  #lines = [];
  #logStream;
  #exited = null;

  constructor(child, configDir, logFile) {
    this.#child = child;
    this.configDir = configDir;
    this.logFile = logFile;
    /** productpage URL printed by the launcher, e.g. http://127.0.0.1:41234/productpage */
    this.productPageUrl = null;
    /** the control plane's service graph dashboard URL printed by the launcher, e.g. http://127.0.0.1:41235/ */
    this.dashboardUrl = null;
    /** workload name -> { pid, url } as printed by the launcher */
    this.workloads = new Map();
    this.#logStream = logFile ? fs.createWriteStream(logFile) : null;
    this.#exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));
  }

  get pid() {
    return this.#child.pid;
  }

  /** The last lines the launcher printed (stdout and stderr), for failure messages. */
  tail(count = 60) {
    return this.#lines.slice(-count).join('\n');
  }

  /** Harness events, timestamped like the launcher's own log lines. */
  note(text) {
    this._line(`${new Date().toISOString().slice(11, 23)} [harness] ${text}`);
  }

  _line(line) {
    this.#lines.push(line);
    if (this.#lines.length > keptLines) {
      this.#lines.splice(0, this.#lines.length - keptLines);
    }
    this.#logStream?.write(line + '\n');
    const workload = workloadLine.exec(line);
    if (workload) {
      this.workloads.set(workload[1], { pid: Number(workload[2]), url: workload[3] });
    }
  }

  /** Resolves with { code, signal } when the launcher process has exited. */
  get exited() {
    return this.#exited;
  }

  /** The *.yaml / *.yml files currently in the config folder, by name. */
  appliedRules() {
    return fs.readdirSync(this.configDir).filter((f) => /\.ya?ml$/i.test(f)).sort();
  }

  /**
   * The rule files in the config folder from oldest to newest write time (ties by name, as the control
   * plane breaks them): the order in which they were applied, which decides which definition of a
   * resource defined in several files is in force (the newest, as with kubectl apply).
   */
  rulesByAge() {
    return this.appliedRules()
      .map((name) => ({ name, mtimeNs: fs.statSync(path.join(this.configDir, name), { bigint: true }).mtimeNs }))
      .sort((a, b) => (a.mtimeNs < b.mtimeNs ? -1 : a.mtimeNs > b.mtimeNs ? 1 : a.name < b.name ? -1 : 1))
      .map((r) => r.name);
  }

  /**
   * `cp networking/NAME config/` (or `security/NAME`): copies one file of samples/bookinfo-dotnet/networking
   * (traffic rules) or samples/bookinfo-dotnet/security (mTLS, authorization, rate limit) into the config
   * folder, on top of what is there (a file of the same name is replaced). The copy is written under a
   * temporary name the watcher ignores, given its write time, and renamed, so the control plane never reads
   * half a file and sees the final time at once. The write time is now, or just after the newest file in
   * the folder when that is not earlier (two copies in one clock tick), so the copy is always the newest
   * file, as a `cp` typed after the previous one is.
   */
  apply(name) {
    const file = ruleFileName(name);
    const source = fs.existsSync(path.join(networkingDir, file)) ? path.join(networkingDir, file) : path.join(securityDir, file);
    if (!fs.existsSync(source)) {
      throw new Error(`Rule file ${source} does not exist (BOOKINFO.md names it).`);
    }
    const temp = path.join(this.configDir, `.${file}.partial`);
    fs.writeFileSync(temp, fs.readFileSync(source));
    const mtimeMs = Math.max(Date.now(), this.#newestMtimeMs() + mtimeStepMs);
    fs.utimesSync(temp, mtimeMs / 1000, mtimeMs / 1000);
    fs.renameSync(temp, path.join(this.configDir, file));
    this.note(`cp ${file}: config folder holds, oldest first: ${this.rulesByAge().join(', ')}`);
  }

  /** `rm config/NAME ...`: deletes rule files from the config folder; each must be there. */
  remove(...names) {
    const files = names.map(ruleFileName);
    for (const file of files) {
      const target = path.join(this.configDir, file);
      if (!fs.existsSync(target)) {
        throw new Error(`Cannot remove ${file}: it is not in the config folder (holds: ${this.rulesByAge().join(', ') || 'nothing'}).`);
      }
      fs.rmSync(target);
    }
    this.note(`rm ${files.join(' ')}: config folder holds, oldest first: ${this.rulesByAge().join(', ') || '(nothing)'}`);
  }

  /**
   * Checks that the config folder holds exactly `names`, applied in that order (oldest first), which is
   * where the previous scenario leaves it when it passed. If not (a previous scenario failed half way),
   * rebuilds that state by removing every rule file and applying `names` in order, so one failure does not
   * change what the next scenario tests. Returns true when the folder was already in that state.
   */
  expectRules(names) {
    const wanted = names.map(ruleFileName);
    const present = this.rulesByAge();
    if (present.join('\n') === wanted.join('\n')) return true;
    this.note(`config folder holds ${present.join(', ') || 'nothing'}, expected ${wanted.join(', ') || 'nothing'}: rebuilding it`);
    for (const file of present) fs.rmSync(path.join(this.configDir, file));
    for (const file of wanted) this.apply(file);
    return false;
  }

  #newestMtimeMs() {
    let newest = 0;
    for (const name of this.appliedRules()) {
      newest = Math.max(newest, fs.statSync(path.join(this.configDir, name)).mtimeMs);
    }
    return newest;
  }

  /**
   * Stops the launcher: closes its stdin (it was started with --exit-on-stdin-close) and waits for a
   * clean exit; after the grace period SIGTERM, then SIGKILL to the whole process group, so no
   * workload outlives the test run. Returns { code, signal, clean } where clean means it exited by
   * itself after stdin closed.
   */
  async stop(graceMs = 15000) {
    const child = this.#child;
    let clean = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      if (!(await within(this.#exited, graceMs))) {
        clean = false;
        this.note('launcher did not exit after stdin closed; sending SIGTERM');
        signalGroup(child.pid, 'SIGTERM');
        if (!(await within(this.#exited, 5000))) {
          this.note('launcher did not exit after SIGTERM; sending SIGKILL');
          signalGroup(child.pid, 'SIGKILL');
          await within(this.#exited, 5000);
        }
      }
    }
    // Workloads are children of the launcher in its process group: none may survive it.
    for (const [name, w] of this.workloads) {
      if (alive(w.pid)) {
        clean = false;
        this.note(`workload ${name} pid=${w.pid} still alive after the launcher exited; killing it`);
        try {
          process.kill(w.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    signalGroup(child.pid, 'SIGKILL');
    const result = await this.#exited;
    await new Promise((resolve) => (this.#logStream ? this.#logStream.end(resolve) : resolve()));
    fs.rmSync(this.configDir, { recursive: true, force: true });
    return { ...result, clean };
  }
}

/**
 * Starts the launcher and resolves once it printed "Bookinfo is ready: URL".
 * Rejects (after killing it) when it exits first or is not ready within readyTimeoutMs.
 */
export async function startBookinfo({
  launcherDll = process.env.BOOKINFO_LAUNCHER || defaultLauncherDll,
  readyTimeoutMs = Number(process.env.BOOKINFO_READY_TIMEOUT_MS || 120000),
  logFile = null,
} = {}) {
  if (!fs.existsSync(launcherDll)) {
    throw new Error(
      `Bookinfo launcher not built: ${launcherDll} is missing. ` +
        'Build it with: dotnet build samples/bookinfo-dotnet/launcher -c Release (scripts/test.sh builds the solution in Release).',
    );
  }
  // A private copy of the sample's config folder (the state the run command starts from).
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bookinfo-config-'));
  const sampleConfig = path.join(sampleDir, 'config');
  if (fs.existsSync(sampleConfig)) {
    fs.cpSync(sampleConfig, configDir, { recursive: true });
  }
  const args = [launcherDll, '--config', configDir, '--port', '0', '--xds-port', '0', '--monitoring-port', '0', '--exit-on-stdin-close'];
  const child = spawn('dotnet', args, {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
    // Own process group, so stop() can signal the launcher and every workload it started at once.
    detached: true,
    env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
  });
  const bookinfo = new Bookinfo(child, configDir, logFile);
  bookinfo.note(`dotnet ${args.join(' ')}`);

  const ready = new Promise((resolve, reject) => {
    const onLine = (line) => {
      bookinfo._line(line);
      const d = dashboardLine.exec(line);
      if (d && !bookinfo.dashboardUrl) {
        bookinfo.dashboardUrl = d[1];
      }
      const m = readyLine.exec(line);
      if (m && !bookinfo.productPageUrl) {
        bookinfo.productPageUrl = m[1];
        resolve(m[1]);
      }
    };
    lines(child.stdout, onLine);
    lines(child.stderr, (line) => bookinfo._line(`[stderr] ${line}`));
    child.on('error', (err) => reject(new Error(`Could not start dotnet: ${err.message}`)));
    bookinfo.exited.then(({ code, signal }) =>
      reject(new Error(`Launcher exited (code ${code}, signal ${signal}) before printing "Bookinfo is ready: URL".`)),
    );
  });

  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Launcher printed no "Bookinfo is ready: URL" line within ${readyTimeoutMs} ms.`)),
      readyTimeoutMs,
    );
  });
  try {
    await Promise.race([ready, timeout]);
  } catch (err) {
    await bookinfo.stop(3000);
    err.message += `\nLast launcher output:\n${bookinfo.tail()}`;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return bookinfo;
}

function ruleFileName(name) {
  return /\.ya?ml$/i.test(name) ? name : `${name}.yaml`;
}

function lines(stream, onLine) {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, nl).replace(/\r$/, ''));
      buffered = buffered.slice(nl + 1);
    }
  });
  stream.on('end', () => buffered && onLine(buffered));
}

async function within(promise, ms) {
  let timer;
  const result = await Promise.race([
    promise.then(() => true),
    new Promise((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return result;
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
