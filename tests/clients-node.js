// SPDX-License-Identifier: MIT
// The JavaScript side of tests/clients-node.sh (make check-clients).
// worker_threads spin on CPU work, libuv's thread pool stays busy with
// crypto.pbkdf2 and fs.readFile, and meanwhile the main thread launches
// processes with child_process.execFile (libuv's uv_spawn, which forks on
// Linux): every exit status and every output is checked.
//
// Arguments: LAUNCHES (200), IN_FLIGHT (4), WORKERS (2), FILE (a file for
// readFile; default this script).  Prints one RESULT line of key=value
// pairs; exits 0 when every launch did as expected.
'use strict';
const { Worker, isMainThread, parentPort } = require('worker_threads');
const { execFile } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');

if (!isMainThread) {
    // CPU work until told to stop; counts rounds.
    let stop = false, rounds = 0, x = 1;
    parentPort.on('message', () => { stop = true; });
    const round = () => {
        for (let i = 0; i < 200000; i++)
            x = (x * 1103515245 + 12345) % 2147483648;
        rounds++;
        if (stop)
            parentPort.postMessage({ rounds, x });
        else
            setImmediate(round);    // lets the stop message in
    };
    round();
    return;
}

const launches = Number(process.argv[2] || 200);
const inFlight = Number(process.argv[3] || 4);
const nworkers = Number(process.argv[4] || 2);
const file = process.argv[5] || __filename;

let stopping = false;
const counts = { pbkdf2: 0, readFile: 0, poolErrors: 0 };

// Four of each in flight keep libuv's four pool threads busy.
function pbkdf2Loop() {
    if (stopping)
        return;
    crypto.pbkdf2('secret', 'salt', 2000, 32, 'sha256', (err) => {
        if (err) counts.poolErrors++; else counts.pbkdf2++;
        pbkdf2Loop();
    });
}
function readLoop() {
    if (stopping)
        return;
    fs.readFile(file, (err) => {
        if (err) counts.poolErrors++; else counts.readFile++;
        readLoop();
    });
}

// One launch: /bin/echo, or /bin/sh with a known exit status.  Resolves to
// null when it did as expected, else to what it did.
function launch(i) {
    return new Promise((resolve) => {
        let cmd, args, want, wantStatus;
        if (i % 2 === 0) {
            cmd = '/bin/echo'; args = ['echo-' + i];
            want = 'echo-' + i + '\n'; wantStatus = 0;
        } else {
            cmd = '/bin/sh'; args = ['-c', 'echo sh-$0; exit $1', String(i),
                String(i % 7)];
            want = 'sh-' + i + '\n'; wantStatus = i % 7;
        }
        execFile(cmd, args, { timeout: 120000 }, (err, stdout, stderr) => {
            const status = err ? (typeof err.code === 'number' ? err.code
                : String(err.code || err.signal)) : 0;
            // Anything on stderr (a preloaded library's warning, say) is a
            // difference too.
            if (status !== wantStatus || stdout !== want || stderr !== '')
                resolve(`launch ${i}: status ${status} (want ${wantStatus}),` +
                    ` stdout ${JSON.stringify(stdout)} (want` +
                    ` ${JSON.stringify(want)}), stderr ${JSON.stringify(stderr)}`);
            else
                resolve(null);
        });
    });
}

async function main() {
    const workers = [];
    for (let w = 0; w < nworkers; w++)
        workers.push(new Worker(__filename));
    for (let k = 0; k < 4; k++) {
        pbkdf2Loop();
        readLoop();
    }
    // Let the workers and the pool get going first.
    await new Promise((r) => setTimeout(r, 200));

    const t0 = process.hrtime.bigint();
    let next = 0, ok = 0, failed = 0;
    const runner = async () => {
        while (next < launches) {
            const why = await launch(next++);
            if (why === null) {
                ok++;
            } else {
                failed++;
                if (failed <= 10)
                    console.log('FAIL ' + why);
            }
        }
    };
    const runners = [];
    for (let k = 0; k < inFlight; k++)
        runners.push(runner());
    await Promise.all(runners);
    const launchMs = Number((process.hrtime.bigint() - t0) / 1000000n);

    stopping = true;
    let rounds = 0;
    await Promise.all(workers.map((w) => new Promise((resolve) => {
        w.once('message', (m) => { rounds += m.rounds; resolve(); });
        w.postMessage('stop');
    })));
    await Promise.all(workers.map((w) => w.terminate()));
    console.log(`RESULT launches=${launches} ok=${ok} failed=${failed}` +
        ` launch_ms=${launchMs} worker_rounds=${rounds}` +
        ` pbkdf2=${counts.pbkdf2} readFile=${counts.readFile}` +
        ` pool_errors=${counts.poolErrors}`);
    process.exitCode = ok === launches && counts.poolErrors === 0 ? 0 : 1;
}
main().catch((e) => { console.log('ERROR ' + (e && e.stack)); process.exitCode = 1; });
