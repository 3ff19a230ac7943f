// farenad with a stock JavaScript msgpack client (npm's @msgpack/msgpack),
// speaking the protocol directly over the Unix socket as PROTOCOL.md says
// any client may. JavaScript encoders send numbers as float64 (always with
// forceIntegerToFloat; others do it for every number of 2^31 or more), so
// every integer param here goes out as a float64 and the daemon must read
// it as the integer it holds; a float past the end of a file is
// out_of_bounds and a fractional one bad_request. Then it runs the
// JavaScript example of PROTOCOL.md section 11 as it is written.
//
// usage: node test_node.mjs FARENAD NODE_DIR PROTOCOL_MD
//   NODE_DIR holds node_modules (npm ci of tests/node, done by CTest).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const [farenad, nodeDir, protocolMd] = process.argv.slice(2);
if (!farenad || !nodeDir || !protocolMd) {
    console.error("usage: node test_node.mjs FARENAD NODE_DIR PROTOCOL_MD");
    process.exit(2);
}
const require = createRequire(path.join(path.resolve(nodeDir), "package.json"));
const { Encoder, encode, decodeMultiStream } = require("@msgpack/msgpack");

// The whole test is bounded: a hang fails it instead of stalling CTest.
const deadline = setTimeout(() => fail("timed out after 60 s"), 60000);

const dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), "farena-node-"));
const sock = path.join(dir, "farenad.sock");
fs.mkdirSync(path.join(dir, "scratch"));
let daemon = null;
let daemonExit = null;

function cleanup() {
    if (daemon !== null && daemonExit === null) daemon.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
}

function fail(msg) {
    console.error("FAIL: " + msg);
    cleanup();
    process.exit(1);
}

function check(cond, msg) {
    if (!cond) fail(msg);
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

const floats = new Encoder({ forceIntegerToFloat: true });

// One connection: requests [0, msgid, method, params] and responses matched
// by msgid. With floats set, the params array is packed by an encoder that
// sends every number as float64 (the envelope's 0 and msgid stay integers,
// as PROTOCOL.md section 2.6 asks).
class Client {
    constructor(sock) {
        this.sock = sock;
        this.next = 1;
        this.waiting = new Map();
        this.closed = null;
    }

    static connect(path) {
        return new Promise((resolve, reject) => {
            const s = net.createConnection(path);
            s.once("error", reject);
            s.once("connect", () => {
                s.off("error", reject);
                const c = new Client(s);
                c.read();
                resolve(c);
            });
        });
    }

    async read() {
        try {
            for await (const msg of decodeMultiStream(this.sock)) {
                check(Array.isArray(msg) && msg.length === 4 && msg[0] === 1, "not a response");
                const w = this.waiting.get(msg[1]);
                check(w !== undefined, "a response to no request: msgid " + msg[1]);
                this.waiting.delete(msg[1]);
                w({ error: msg[2], result: msg[3] });
            }
            this.closed = "closed by farenad";
        } catch (e) {
            this.closed = String(e);
        }
        for (const w of this.waiting.values()) w({ error: ["closed", this.closed], result: null });
        this.waiting.clear();
    }

    request(method, params, useFloats) {
        const msgid = this.next++;
        const body = (useFloats ? floats : new Encoder()).encode(params);
        const head = Buffer.concat([Buffer.from([0x94, 0x00]), encode(msgid), encode(method)]);
        return { msgid, bytes: Buffer.concat([head, body]) };
    }

    send(req) {
        check(this.closed === null, "connection closed: " + this.closed);
        return new Promise((resolve) => {
            this.waiting.set(req.msgid, resolve);
            this.sock.write(req.bytes);
        });
    }

    // A call that must succeed; returns its result.
    async ok(method, params, useFloats = true) {
        const r = await this.send(this.request(method, params, useFloats));
        check(r.error === null, `${method}: ${JSON.stringify(r.error)}`);
        return r.result;
    }

    // A call that must fail with code; returns the message.
    async err(code, method, params, useFloats = true) {
        const r = await this.send(this.request(method, params, useFloats));
        check(
            r.error !== null && r.error[0] === code,
            `${method} ${JSON.stringify(params)}: expected ${code}, got ${JSON.stringify(r.error)}`
        );
        return r.error[1];
    }

    close() {
        this.sock.end();
    }
}

// Starts the private daemon and waits (bounded) until it accepts.
async function startDaemon() {
    daemon = spawn(farenad, ["--socket", sock, "--dir", path.join(dir, "scratch"), "--min-free", "0"], {
        stdio: ["ignore", "inherit", "inherit"],
    });
    daemon.on("exit", (code, signal) => {
        daemonExit = { code, signal };
    });
    for (let i = 0; i < 200; i++) {
        check(daemonExit === null, "farenad exited at start-up");
        try {
            return await Client.connect(sock);
        } catch {
            await sleep(50);
        }
    }
    fail("farenad did not start");
}

const bytes = (s) => new TextEncoder().encode(s);
const text = (b) => new TextDecoder().decode(b);

async function main() {
    const c = await startDaemon();

    const hello = await c.ok("hello", [{ client: "test_node.mjs", pid: process.pid }]);
    check(hello.protocol === 1, "hello: protocol " + hello.protocol);
    check(hello.methods.includes("list"), "hello: methods lack list: " + hello.methods);

    // The float encoder really sends float64s: writer_new [0.0].
    const req = c.request("writer_new", [0], true);
    check(req.bytes.subarray(-9).equals(Buffer.from("cb0000000000000000", "hex")), "0 not sent as float64");
    const w = (await c.send(req)).result;
    check(Number.isInteger(w) && w > 0, "writer_new: " + w);

    // A writer's whole life with every integer param a float64.
    const l1 = await c.ok("push", [w, bytes("hello from node")]);
    const l2 = await c.ok("push", [w, bytes(", twice")]);
    check(JSON.stringify(l1) === "[0,0,15]" && JSON.stringify(l2) === "[0,15,7]", "push locations");
    check((await c.ok("writer_len", [w])) === 22, "writer_len");
    const arena = await c.ok("into_arena", [w]);
    check(text(await c.ok("get", [arena, l2])) === ", twice", "get of the second payload");
    const many = await c.ok("get_many", [arena, [l1, [0, 6, 4]]]);
    check(text(many[0]) === "hello from node" && text(many[1]) === "from", "get_many");
    const info = await c.ok("arena_info", [arena]);
    check(info.bytes === 22 && info.files === 1 && info.refs === 1, "arena_info " + JSON.stringify(info));

    // Offsets of 2^31 and more: float64 on the wire, read as integers, and
    // past this 22-byte file: out_of_bounds, never bad_request.
    const far = c.request("get", [arena, [0, 2 ** 31, 1]], true);
    check(far.bytes.includes(Buffer.from("cb41e0000000000000", "hex")), "2^31 not sent as float64");
    let r = await c.send(far);
    check(r.error !== null && r.error[0] === "out_of_bounds", "get at 2^31: " + JSON.stringify(r.error));
    await c.err("out_of_bounds", "get", [arena, [0, 3000000000, 0]]);
    await c.err("out_of_bounds", "get", [arena, [0, 2 ** 32 - 1, 0]]);
    await c.err("out_of_bounds", "get_many", [arena, [l1, [0, 2 ** 31 + 7, 1]]]);
    // The same far offset as the default encoder packs it (uint32): the same answer.
    await c.err("out_of_bounds", "get", [arena, [0, 2 ** 31, 1]], false);

    // Every other float is bad_request, and the connection lives on.
    check((await c.err("bad_request", "get", [arena, [0, 2 ** 31 + 0.5, 1]])).includes("offset"), "message");
    await c.err("bad_request", "get", [arena, [0, 0.5, 1]]);
    await c.err("bad_request", "get", [arena, [0, 2 ** 32, 1]]);
    await c.err("bad_request", "get", [arena, [0, NaN, 1]]);
    await c.err("bad_request", "get", [arena, [0, Infinity, 1]]);
    await c.err("bad_request", "get", [arena, [0, 0, -1]]);
    await c.err("bad_request", "get", [arena, [65536, 0, 1]]);
    await c.err("bad_request", "get", [arena + 0.5, l1]);
    await c.err("bad_request", "writer_new", [1.5]);
    await c.err("bad_request", "release", [0]);
    check(text(await c.ok("get", [arena, l1])) === "hello from node", "get after the refusals");

    // list: pages of names, the count a float too.
    for (const n of ["node/c", "node/a", "node/b", "node/e", "node/d", "other"]) await c.ok("name", [arena, n]);
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
        const page = await c.ok("list", ["node/", cursor, 2]);
        check(page.names.length <= 2, "a page over count");
        for (const e of page.names) {
            check(e.arena === arena && e.bytes === 22 && e.files === 1 && e.refs === 7, "entry " + JSON.stringify(e));
            seen.push(e.name);
        }
        cursor = page.cursor;
        pages++;
    } while (cursor !== null);
    check(seen.join(",") === "node/a,node/b,node/c,node/d,node/e", "listed " + seen);
    check(pages === 3, "pages: " + pages);
    const all = await c.ok("list", ["", null, 1000]);
    check(all.names.length === 6 && all.cursor === null, "list of every name");
    await c.err("bad_request", "list", ["", null, 0]);
    await c.err("bad_request", "list", ["", null, 2.5]);
    await c.err("bad_request", "list", [7, null, 10]);

    // The JavaScript example of PROTOCOL.md section 11, exactly as written.
    const md = fs.readFileSync(protocolMd, "utf8");
    const m = md.match(/## 11\. A JavaScript client[\s\S]*?```js\n([\s\S]*?)```/);
    check(m !== null, "PROTOCOL.md has no section 11 js block");
    const example = path.join(path.resolve(nodeDir), "protocol_example.mjs");
    fs.writeFileSync(example, m[1]);
    const ex = spawnSync(process.execPath, [example], {
        env: { ...process.env, FARENA_SOCKET: sock },
        encoding: "utf8",
        timeout: 20000,
    });
    check(ex.status === 0, `PROTOCOL.md example: status ${ex.status}\n${ex.stdout}\n${ex.stderr}`);
    check(ex.stdout.includes("hello"), "PROTOCOL.md example printed: " + ex.stdout);

    for (const n of ["node/a", "node/b", "node/c", "node/d", "node/e", "other"]) await c.ok("unname", [n]);
    await c.ok("release", [arena]);
    const st = await c.ok("stat", []);
    check(st.arenas === 0 && st.names === 0, "left behind: " + JSON.stringify(st));
    check(st.errors.list === 3, "list errors: " + st.errors.list);
    c.close();

    // A clean stop: exit status 0 (the sanitizer build's leak check included).
    daemon.kill("SIGTERM");
    for (let i = 0; i < 200 && daemonExit === null; i++) await sleep(50);
    check(daemonExit !== null && daemonExit.code === 0, "farenad exit: " + JSON.stringify(daemonExit));
    clearTimeout(deadline);
    cleanup();
    console.log("ok: stock JavaScript client (@msgpack/msgpack)");
}

main().catch((e) => fail(e.stack || String(e)));
