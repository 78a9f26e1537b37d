// Generates hestat's SEAL test vectors with real Microsoft SEAL 4.1
// (node-seal 7.0.0, WebAssembly). Run with Node 24 (see vectors/README.md):
//   node gen.mjs generate ../        writes vectors/n4096/, vectors/n8192/, manifest.json
//   node gen.mjs seeded ../          adds SEAL's default saves (seeded objects, zlib)
//                                    made from the secret keys generate wrote
//   node gen.mjs check ../           SEAL decrypts the ciphertexts hestat wrote under
//                                    vectors/hestat-out/ and compares with the manifest
import SEAL from 'node-seal';
import fs from 'node:fs';
import path from 'node:path';

const seal = await SEAL();
const [mode = 'generate', outDir = '..'] = process.argv.slice(2);

const CASES = [
  { name: 'n4096', n: 4096, bits: [40, 20, 40], scale: 2 ** 20 },
  { name: 'n8192', n: 8192, bits: [60, 40, 40, 60], scale: 2 ** 40 },
];

// Deterministic inputs, one per slot (the C tests compute the same formulas).
const inputA = (i) => ((i * 37) % 101) / 50 - 1;
const inputB = (i) => ((i * 53) % 97) / 48 - 1;

// a and b in every slot, and SEAL's encodings of them at the scale.
function encodeInputs(enc, scale) {
  const slots = enc.slotCount();
  const a = Float64Array.from({ length: slots }, (_, i) => inputA(i));
  const b = Float64Array.from({ length: slots }, (_, i) => inputB(i));
  const pa = new seal.Plaintext(), pb = new seal.Plaintext();
  enc.encode(a, scale, pa);
  enc.encode(b, scale, pb);
  return { slots, a, b, pa, pb };
}

function context(c) {
  const parms = new seal.EncryptionParameters(seal.SchemeType.ckks);
  parms.setPolyModulusDegree(c.n);
  parms.setCoeffModulus(seal.CoeffModulus.Create(c.n, Int32Array.from(c.bits)));
  const ctx = new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
  if (!ctx.parametersSet()) throw new Error(`parameters not set for ${c.name}`);
  return { parms, ctx };
}

function save(dir, file, obj, compr) {
  const bytes = obj.saveToArray(compr === 'zstd' ? seal.ComprModeType.zstd : seal.ComprModeType.none);
  fs.writeFileSync(path.join(dir, file), Buffer.from(bytes));
  return { file, bytes: bytes.length, compression: compr || 'none' };
}

function generate() {
  const manifest = {
    generator: 'vectors/gen/gen.mjs',
    seal: 'Microsoft SEAL 4.1 via node-seal 7.0.0 (WebAssembly)',
    inputs: { a: '((i*37) % 101)/50 - 1', b: '((i*53) % 97)/48 - 1', slots: 'all N/2' },
    galois_steps: [1, -3, 0],
    cases: [],
  };
  for (const c of CASES) {
    const dir = path.join(outDir, c.name);
    fs.mkdirSync(dir, { recursive: true });
    const { parms, ctx } = context(c);
    const primes = seal.jsArrayFromVecModulus(parms.coeffModulus()).map((m) => m.toString());
    const kg = new seal.KeyGenerator(ctx);
    const sk = kg.secretKey();
    const pk = kg.createPublicKey();
    const rk = kg.createRelinKeys();
    // Step 0 is SEAL's column rotation, i.e. CKKS conjugation (Galois element 2N-1).
    const gk = kg.createGaloisKeysWithSteps(Int32Array.from([1, -3, 0]));
    const enc = new seal.CKKSEncoder(ctx);
    const encryptor = new seal.Encryptor(ctx, pk);
    const ev = new seal.Evaluator(ctx);
    const { pa, pb } = encodeInputs(enc, c.scale);
    const ca = new seal.Ciphertext(), cb = new seal.Ciphertext();
    encryptor.encrypt(pa, ca);
    encryptor.encrypt(pb, cb);
    const out = (f) => { const x = new seal.Ciphertext(); f(x); return x; };
    const add = out((x) => ev.add(ca, cb, x));
    const mul = out((x) => ev.multiply(ca, cb, x));
    const relin = out((x) => ev.relinearize(mul, rk, x));
    const rescale = out((x) => ev.rescaleToNext(relin, x));
    const rot1 = out((x) => ev.rotateVector(ca, 1, gk, x));
    const rotm3 = out((x) => ev.rotateVector(ca, -3, gk, x));
    const conj = out((x) => ev.complexConjugate(ca, gk, x));
    const files = [
      ['secret_key', save(dir, 'secret_key.bin', sk)],
      ['public_key', save(dir, 'public_key.bin', pk)],
      ['relin_keys', save(dir, 'relin_keys.bin', rk, 'zstd')],
      ['galois_keys', save(dir, 'galois_keys.bin', gk, 'zstd')],
      ['plain_a', save(dir, 'plain_a.bin', pa)],
      ['ct_a', save(dir, 'ct_a.bin', ca)],
      ['ct_b', save(dir, 'ct_b.bin', cb)],
      ['ct_add', save(dir, 'ct_add.bin', add)],
      ['ct_multiply', save(dir, 'ct_multiply.bin', mul)],
      ['ct_relinearize', save(dir, 'ct_relinearize.bin', relin)],
      ['ct_rescale', save(dir, 'ct_rescale.bin', rescale)],
      ['ct_rotate_1', save(dir, 'ct_rotate_1.bin', rot1)],
      ['ct_rotate_m3', save(dir, 'ct_rotate_m3.bin', rotm3)],
      ['ct_conjugate', save(dir, 'ct_conjugate.bin', conj)],
      ['ct_a_zstd', save(dir, 'ct_a_zstd.bin', ca, 'zstd')],
    ];
    manifest.cases.push({
      name: c.name, n: c.n, bits: c.bits, primes, scale: c.scale,
      rescaled_scale: rescale.scale(),
      files: Object.fromEntries(files.map(([k, v]) => [k, v])),
      ops: {
        ct_add: 'add(ct_a, ct_b)', ct_multiply: 'multiply(ct_a, ct_b), size 3',
        ct_relinearize: 'relinearize(ct_multiply, relin_keys)',
        ct_rescale: 'rescale_to_next(ct_relinearize)',
        ct_rotate_1: 'rotate_vector(ct_a, 1)', ct_rotate_m3: 'rotate_vector(ct_a, -3)',
        ct_conjugate: 'complex_conjugate(ct_a)', plain_a: 'encode(a, scale)',
        ct_a_zstd: 'ct_a saved with compr_mode zstd',
      },
    });
  }
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote ${CASES.length} cases under ${outDir}`);
}

// SEAL decrypts what hestat encrypted (hestat-out/<case>/ct_from_hestat.bin, the
// values in ct_from_hestat.txt) with the secret key from the vectors.
function check() {
  let failures = 0;
  for (const c of CASES) {
    const dir = path.join(outDir, c.name);
    const hdir = path.join(outDir, 'hestat-out', c.name);
    const ctfile = path.join(hdir, 'ct_from_hestat.bin');
    if (!fs.existsSync(ctfile)) { console.log(`${c.name}: no ${ctfile}, skipped`); continue; }
    const { ctx } = context(c);
    const sk = new seal.SecretKey();
    sk.loadFromArray(ctx, new Uint8Array(fs.readFileSync(path.join(dir, 'secret_key.bin'))));
    const ct = new seal.Ciphertext();
    ct.loadFromArray(ctx, new Uint8Array(fs.readFileSync(ctfile)));
    const dec = new seal.Decryptor(ctx, sk);
    const pt = new seal.Plaintext();
    dec.decrypt(ct, pt);
    const got = new seal.CKKSEncoder(ctx).decodeFloat64(pt);
    const want = fs.readFileSync(path.join(hdir, 'ct_from_hestat.txt'), 'utf8').trim().split('\n').map(Number);
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
    // CKKS noise is a few units of 1/scale times a small factor: 2^13/scale
    // (2^-7 at scale 2^20), and never stricter than 1e-6.
    const tol = Math.max(1e-6, 2 ** 13 / c.scale);
    const ok = err < tol;
    failures += ok ? 0 : 1;
    console.log(`${c.name}: SEAL decrypted hestat's ciphertext, max abs error ${err.toExponential(2)} over ${want.length} slots: ${ok ? 'ok' : 'FAILED'}`);
    // hestat's seeded output, loaded by SEAL (which expands the seeds).
    const hfile = (f) => new Uint8Array(fs.readFileSync(path.join(hdir, f)));
    const maxErr = (x) => {
      const p2 = new seal.Plaintext();
      dec.decrypt(x, p2);
      const v = new seal.CKKSEncoder(ctx).decodeFloat64(p2);
      let e = 0;
      for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(v[i] - want[i]));
      return e;
    };
    const report = (what, good, detail) => {
      failures += good ? 0 : 1;
      console.log(`${c.name}: ${what}${detail ? ', ' + detail : ''}: ${good ? 'ok' : 'FAILED'}`);
    };
    const sym = new seal.Ciphertext();
    sym.loadFromArray(ctx, hfile('ct_sym_from_hestat.bin'));
    const eSym = maxErr(sym);
    report('SEAL decrypted hestat\'s seeded symmetric encryption', eSym < tol, `max abs error ${eSym.toExponential(2)}`);
    const pk = new seal.PublicKey();
    pk.loadFromArray(ctx, hfile('pk_from_hestat.bin'));
    const ctPk = new seal.Ciphertext();
    const enc = new seal.CKKSEncoder(ctx);
    const pw = new seal.Plaintext();
    const vals = Float64Array.from({ length: enc.slotCount() }, (_, i) => (i < want.length ? want[i] : 0));
    enc.encode(vals, c.scale, pw);
    new seal.Encryptor(ctx, pk).encrypt(pw, ctPk);
    const ePk = maxErr(ctPk);
    report('SEAL encrypted with hestat\'s seeded public key and decrypted', ePk < tol, `max abs error ${ePk.toExponential(2)}`);
    const ev = new seal.Evaluator(ctx);
    const vload = (f) => { const x = new seal.Ciphertext(); x.loadFromArray(ctx, new Uint8Array(fs.readFileSync(path.join(dir, f)))); return x; };
    const same = (x, f) => Buffer.from(x.saveToArray(seal.ComprModeType.none)).equals(Buffer.from(hfile(f)));
    const rk = new seal.RelinKeys();
    rk.loadFromArray(ctx, hfile('rk_from_hestat.bin'));
    const relin = new seal.Ciphertext();
    ev.relinearize(vload('ct_multiply.bin'), rk, relin);
    report('SEAL relinearized with hestat\'s seeded relin keys: bytes equal hestat\'s', same(relin, 'ct_relin_hestat_keys.bin'));
    const gk = new seal.GaloisKeys();
    gk.loadFromArray(ctx, hfile('gk_from_hestat.bin'));
    const rot = new seal.Ciphertext();
    ev.rotateVector(vload('ct_a.bin'), 1, gk, rot);
    report('SEAL rotated with hestat\'s seeded Galois keys: bytes equal hestat\'s', same(rot, 'ct_rot1_hestat_keys.bin'));
  }
  process.exit(failures ? 1 : 0);
}

// SEAL's default saves: seeded (Serializable) public, relinearization and
// Galois keys and symmetric encryptions, zstd by default, and zlib files.
// Made from the secret key already in vectors/<case>/ (KeyGenerator(ctx, sk)),
// so the files generate() wrote stay valid; with SEAL's own results on them:
// what SEAL expands the seeds to (saved uncompressed), and evaluations with the
// seeded keys, which only a bit-exact expansion reproduces.
function seeded() {
  const manifest = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
  for (const c of CASES) {
    const dir = path.join(outDir, c.name);
    const { ctx } = context(c);
    const load = (Cls, file) => {
      const x = new Cls();
      x.loadFromArray(ctx, new Uint8Array(fs.readFileSync(path.join(dir, file))));
      return x;
    };
    const sk = load(seal.SecretKey, 'secret_key.bin');
    const kg = new seal.KeyGenerator(ctx, sk);
    const write = (file, bytes, compr) => {
      fs.writeFileSync(path.join(dir, file), Buffer.from(bytes));
      return { file, bytes: bytes.length, compression: compr };
    };
    const Z = { none: seal.ComprModeType.none, zlib: seal.ComprModeType.zlib, zstd: seal.ComprModeType.zstd };
    const small = c.n === 4096;
    const files = {};
    const ops = {};
    // Public key: seeded (zstd, SEAL's default) and SEAL's expansion of it.
    const pkBytes = kg.createPublicKeySerializable().saveToArray(Z.zstd);
    files.public_key_seeded = write('public_key_seeded.bin', pkBytes, 'zstd');
    const pk = new seal.PublicKey();
    pk.loadFromArray(ctx, pkBytes);
    files.public_key_seeded_expanded = write('public_key_seeded_expanded.bin', pk.saveToArray(Z.none), 'none');
    ops.public_key_seeded_expanded = 'public_key_seeded loaded by SEAL (seed expanded), saved uncompressed';
    // Relinearization keys: seeded, zstd (n8192) or zlib (n4096).
    const rkCompr = small ? 'zlib' : 'zstd';
    const rkBytes = kg.createRelinKeysSerializable().saveToArray(Z[rkCompr]);
    files.relin_keys_seeded = write('relin_keys_seeded.bin', rkBytes, rkCompr);
    const rk = new seal.RelinKeys();
    rk.loadFromArray(ctx, rkBytes);
    const ev = new seal.Evaluator(ctx);
    const out = (f) => { const x = new seal.Ciphertext(); f(x); return x; };
    const mul = load(seal.Ciphertext, 'ct_multiply.bin');
    files.ct_relinearize_seeded = write('ct_relinearize_seeded.bin',
      out((x) => ev.relinearize(mul, rk, x)).saveToArray(Z.none), 'none');
    ops.ct_relinearize_seeded = 'relinearize(ct_multiply, relin_keys_seeded)';
    if (small) {
      files.relin_keys_seeded_expanded = write('relin_keys_seeded_expanded.bin', rk.saveToArray(Z.none), 'none');
      ops.relin_keys_seeded_expanded = 'relin_keys_seeded loaded by SEAL, saved uncompressed';
      // Galois keys: seeded, uncompressed, steps 1 and 0 (conjugation).
      const gkBytes = kg.createGaloisKeysSerializableWithSteps(Int32Array.from([1, 0])).saveToArray(Z.none);
      files.galois_keys_seeded = write('galois_keys_seeded.bin', gkBytes, 'none');
      const gk = new seal.GaloisKeys();
      gk.loadFromArray(ctx, gkBytes);
      const ca = load(seal.Ciphertext, 'ct_a.bin');
      files.ct_rotate_1_seeded = write('ct_rotate_1_seeded.bin',
        out((x) => ev.rotateVector(ca, 1, gk, x)).saveToArray(Z.none), 'none');
      ops.ct_rotate_1_seeded = 'rotate_vector(ct_a, 1, galois_keys_seeded)';
      files.ct_conjugate_seeded = write('ct_conjugate_seeded.bin',
        out((x) => ev.complexConjugate(ca, gk, x)).saveToArray(Z.none), 'none');
      ops.ct_conjugate_seeded = 'complex_conjugate(ct_a, galois_keys_seeded)';
    }
    // Symmetric encryption of a (seeded): zstd, and uncompressed for n4096.
    const enc = new seal.Encryptor(ctx, pk, sk);
    const pa = load(seal.Plaintext, 'plain_a.bin');
    files.ct_sym_seeded = write('ct_sym_seeded.bin', enc.encryptSymmetricSerializable(pa).saveToArray(Z.zstd), 'zstd');
    ops.ct_sym_seeded = 'encrypt_symmetric(plain_a), seeded';
    if (small) {
      files.ct_sym_seeded_none = write('ct_sym_seeded_none.bin',
        enc.encryptSymmetricSerializable(pa).saveToArray(Z.none), 'none');
      ops.ct_sym_seeded_none = 'encrypt_symmetric(plain_a), seeded, uncompressed';
    }
    // zlib: ct_a and the secret key as SEAL writes them with compr_mode zlib.
    files.ct_a_zlib = write('ct_a_zlib.bin', load(seal.Ciphertext, 'ct_a.bin').saveToArray(Z.zlib), 'zlib');
    ops.ct_a_zlib = 'ct_a saved with compr_mode zlib';
    files.secret_key_zlib = write('secret_key_zlib.bin', sk.saveToArray(Z.zlib), 'zlib');
    ops.secret_key_zlib = 'secret_key saved with compr_mode zlib';
    const mc = manifest.cases.find((x) => x.name === c.name);
    mc.seeded_files = files;
    mc.seeded_ops = ops;
  }
  manifest.seeded = 'vectors/gen/gen.mjs seeded: SEAL default saves (seeded objects, zlib) from the same secret keys';
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote the seeded and zlib files of ${CASES.length} cases under ${outDir}`);
}

// SEAL files for other parameters (`make seal-sweep`; not in the tree): for each
// case, keys as SEAL saves them by default (seeded, zstd), ct_a encrypted with
// the public key and ct_b encrypt_symmetric (seeded), and SEAL's results of
// every operation hestat-seal evaluates, at the top level and after a rescale,
// saved uncompressed; scripts/seal-sweep.sh has hestat-seal redo them.
const SWEEP = [
  { name: 'n4096_30_24_24_30', n: 4096, bits: [30, 24, 24, 30], scale: 2 ** 24 },
  { name: 'n4096_36_36_37', n: 4096, bits: [36, 36, 37], scale: 2 ** 30 },
  { name: 'n8192_50_30x3_50', n: 8192, bits: [50, 30, 30, 30, 50], scale: 2 ** 30 },
  { name: 'n8192_60_49_60', n: 8192, bits: [60, 49, 60], scale: 2 ** 49 },
  { name: 'n16384_60_40x7_60', n: 16384, bits: [60, 40, 40, 40, 40, 40, 40, 40, 60], scale: 2 ** 40 },
  { name: 'n16384_50x8', n: 16384, bits: [50, 50, 50, 50, 50, 50, 50, 50], scale: 2 ** 50 },
  { name: 'n32768_60_50x12_60', n: 32768, bits: [60, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 60], scale: 2 ** 50 },
];

function sweep() {
  const only = process.argv[4];
  for (const c of SWEEP) {
    if (only && !c.name.startsWith(only)) continue;
    const dir = path.join(outDir, c.name);
    fs.mkdirSync(dir, { recursive: true });
    const { parms, ctx } = context(c);
    const primes = seal.jsArrayFromVecModulus(parms.coeffModulus()).map((m) => m.toString());
    const Z = { none: seal.ComprModeType.none, zstd: seal.ComprModeType.zstd };
    const put = (file, bytes) => fs.writeFileSync(path.join(dir, file), Buffer.from(bytes));
    const kg = new seal.KeyGenerator(ctx);
    const sk = kg.secretKey();
    put('secret_key.bin', sk.saveToArray(Z.none));
    const steps = [1, -3, 5, 0];
    put('public_key.bin', kg.createPublicKeySerializable().saveToArray(Z.zstd));
    put('relin_keys.bin', kg.createRelinKeysSerializable().saveToArray(Z.zstd));
    put('galois_keys.bin', kg.createGaloisKeysSerializableWithSteps(Int32Array.from(steps)).saveToArray(Z.zstd));
    const load = (Cls, file) => { const x = new Cls(); x.loadFromArray(ctx, new Uint8Array(fs.readFileSync(path.join(dir, file)))); return x; };
    const pk = load(seal.PublicKey, 'public_key.bin');
    const rk = load(seal.RelinKeys, 'relin_keys.bin');
    const gk = load(seal.GaloisKeys, 'galois_keys.bin');
    const enc = new seal.CKKSEncoder(ctx);
    const { slots, b, pa, pb } = encodeInputs(enc, c.scale);
    const encryptor = new seal.Encryptor(ctx, pk, sk);
    const ca = new seal.Ciphertext();
    encryptor.encrypt(pa, ca);
    put('ct_a.bin', ca.saveToArray(Z.zstd));
    put('ct_b.bin', encryptor.encryptSymmetricSerializable(pb).saveToArray(Z.zstd));
    const cb = load(seal.Ciphertext, 'ct_b.bin');
    const ev = new seal.Evaluator(ctx);
    const out = (f) => { const x = new seal.Ciphertext(); f(x); return x; };
    const ops = [];
    const save = (file, x, op) => { put(file, x.saveToArray(Z.none)); ops.push(`${file} ${op}`); return x; };
    const levels = primes.length - 1;
    const run = (tag, x, y, py) => {
      save(`${tag}add.bin`, out((r) => ev.add(x, y, r)), `add ${tag}a ${tag}b`);
      save(`${tag}sub.bin`, out((r) => ev.sub(x, y, r)), `sub ${tag}a ${tag}b`);
      save(`${tag}negate.bin`, out((r) => ev.negate(x, r)), `negate ${tag}a`);
      save(`${tag}square.bin`, out((r) => ev.square(x, r)), `square ${tag}a`);
      save(`${tag}add_plain.bin`, out((r) => ev.addPlain(x, py, r)), `add_plain ${tag}a ${tag}plain_b`);
      save(`${tag}sub_plain.bin`, out((r) => ev.subPlain(x, py, r)), `sub_plain ${tag}a ${tag}plain_b`);
      save(`${tag}multiply_plain.bin`, out((r) => ev.multiplyPlain(x, py, r)), `multiply_plain ${tag}a ${tag}plain_b`);
      if (levels > 1 + (tag ? 1 : 0))
        save(`${tag}mod_switch.bin`, out((r) => ev.cipherModSwitchToNext(x, r)), `mod_switch ${tag}a`);
      const mul = save(`${tag}multiply.bin`, out((r) => ev.multiply(x, y, r)), `multiply ${tag}a ${tag}b`);
      const rel = save(`${tag}relinearize.bin`, out((r) => ev.relinearize(mul, rk, r)), `relinearize ${tag}multiply`);
      for (const s of steps) {
        const name = s === 0 ? 'conjugate' : `rotate:${s}`;
        const file = s === 0 ? `${tag}conjugate.bin` : `${tag}rotate_${s < 0 ? 'm' + -s : s}.bin`;
        save(file, out((r) => (s === 0 ? ev.complexConjugate(x, gk, r) : ev.rotateVector(x, s, gk, r))), `${name} ${tag}a`);
      }
      return levels > 1 ? save(`${tag}rescale.bin`, out((r) => ev.rescaleToNext(rel, r)), `rescale ${tag}relinearize`) : null;
    };
    put('a.bin', ca.saveToArray(Z.none));
    put('b.bin', cb.saveToArray(Z.none));
    put('plain_b.bin', pb.saveToArray(Z.zstd));
    run('', ca, cb, pb);
    if (levels > 2) { // one level down: the operands rescaled by SEAL (a times itself, b times itself)
      const down = (x) => out((r) => ev.rescaleToNext(out((t) => ev.relinearize(out((u) => ev.square(x, u)), rk, t)), r));
      const l1a = down(ca), l1b = down(cb);
      put('l1_a.bin', l1a.saveToArray(Z.none));
      put('l1_b.bin', l1b.saveToArray(Z.none));
      // b encoded at l1's level and scale (SEAL's encoder at that parms_id)
      const pl = new seal.Plaintext();
      enc.encode(b, l1b.scale(), pl);
      const plm = new seal.Plaintext();
      ev.plainModSwitchTo(pl, l1b.parmsId(), plm);
      put('l1_plain_b.bin', plm.saveToArray(Z.none));
      run('l1_', load(seal.Ciphertext, 'l1_a.bin'), load(seal.Ciphertext, 'l1_b.bin'), plm);
    }
    if (c.n <= 8192) { // SEAL's default Galois keys (+-2^i, conjugation): other steps composed from them
      put('galois_keys_default.bin', kg.createGaloisKeysSerializable().saveToArray(Z.zstd));
      const gd = load(seal.GaloisKeys, 'galois_keys_default.bin');
      const dops = [];
      for (const s of [7, -6, 13, 2, -(slots / 2 - 1)]) {
        const file = `default_rotate_${s < 0 ? 'm' + -s : s}.bin`;
        put(file, out((r) => ev.rotateVector(ca, s, gd, r)).saveToArray(Z.none));
        dops.push(`${file} rotate:${s} a`);
      }
      fs.writeFileSync(path.join(dir, 'ops_default'), dops.join('\n') + '\n');
    }
    const dec = new seal.Decryptor(ctx, sk), pt = new seal.Plaintext();
    dec.decrypt(ca, pt);
    const got = enc.decodeFloat64(pt);
    fs.writeFileSync(path.join(dir, 'a_decoded.txt'), Array.from(got.slice(0, 64), (v) => v.toPrecision(17)).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'params'), `n=${c.n}\nbits=${c.bits.join(',')}\nprimes=${primes.join(',')}\nscale=${c.scale}\n`);
    fs.writeFileSync(path.join(dir, 'ops'), ops.join('\n') + '\n');
    console.log(`${c.name}: ${ops.length} SEAL results`);
  }
}

// The other way, on the sweep's cases: SEAL reads what hestat-seal made from
// SEAL's keys (written by scripts/seal-sweep.sh under <case>/hestat/): it
// decrypts hestat's public-key and seeded symmetric encryptions of a, and
// evaluates with hestat's seeded relinearization and Galois keys, which must
// give the bytes hestat's own evaluation with them gave.
function sweepCheck() {
  let failures = 0, checks = 0;
  for (const c of SWEEP) {
    const dir = path.join(outDir, c.name), hdir = path.join(dir, 'hestat');
    if (!fs.existsSync(hdir)) continue;
    const { ctx } = context(c);
    const load = (Cls, file) => { const x = new Cls(); x.loadFromArray(ctx, new Uint8Array(fs.readFileSync(file))); return x; };
    const sk = load(seal.SecretKey, path.join(dir, 'secret_key.bin'));
    const dec = new seal.Decryptor(ctx, sk), enc = new seal.CKKSEncoder(ctx), ev = new seal.Evaluator(ctx);
    const report = (what, good, detail) => {
      checks++;
      failures += good ? 0 : 1;
      if (!good) console.log(`${c.name}: ${what}${detail ? ', ' + detail : ''}: FAILED`);
    };
    const tol = Math.max(1e-6, 2 ** 13 / c.scale);
    for (const f of ['ct_pk.bin', 'ct_sym.bin']) {
      const pt = new seal.Plaintext();
      dec.decrypt(load(seal.Ciphertext, path.join(hdir, f)), pt);
      const v = enc.decodeFloat64(pt);
      let e = 0;
      for (let i = 0; i < v.length; i++) e = Math.max(e, Math.abs(v[i] - inputA(i)));
      report(`SEAL decrypted hestat's ${f}`, e < tol, `max abs error ${e.toExponential(2)}`);
    }
    const same = (x, f) => Buffer.from(x.saveToArray(seal.ComprModeType.none)).equals(fs.readFileSync(path.join(hdir, f)));
    const rk = load(seal.RelinKeys, path.join(hdir, 'relin_keys.bin'));
    const gk = load(seal.GaloisKeys, path.join(hdir, 'galois_keys.bin'));
    const out = (f) => { const x = new seal.Ciphertext(); f(x); return x; };
    report('SEAL relinearized with hestat\'s keys to hestat\'s bytes',
      same(out((r) => ev.relinearize(load(seal.Ciphertext, path.join(dir, 'multiply.bin')), rk, r)), 'relinearize.bin'));
    const a = load(seal.Ciphertext, path.join(dir, 'a.bin'));
    report('SEAL rotated with hestat\'s keys to hestat\'s bytes', same(out((r) => ev.rotateVector(a, 1, gk, r)), 'rotate_1.bin'));
    report('SEAL conjugated with hestat\'s keys to hestat\'s bytes', same(out((r) => ev.complexConjugate(a, gk, r)), 'conjugate.bin'));
  }
  console.log(`sweep-check: SEAL made ${checks} checks of hestat's files, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

if (mode === 'generate') generate();
else if (mode === 'sweep') sweep();
else if (mode === 'sweep-check') sweepCheck();
else if (mode === 'seeded') seeded();
else if (mode === 'check') check();
else { console.error('usage: node gen.mjs generate|seeded|check [vectors-dir] | sweep DIR [CASE-PREFIX] | sweep-check DIR'); process.exit(2); }
