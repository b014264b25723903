import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ProtocolError, QmpxError } from '../../lib/errors.js';
import { XdrError, type XdrErrorReason } from '../../lib/rpc/errors.js';
import { XdrReader, XdrWriter, decodeXdr, encodeXdr, type XdrCodec } from '../../lib/rpc/xdr.js';

function hex(write: (writer: XdrWriter) => void): string {
  const writer = new XdrWriter();
  write(writer);
  return writer.toBuffer().toString('hex');
}

function reader(hexText: string): XdrReader {
  return new XdrReader(Buffer.from(hexText, 'hex'));
}

function throwsXdr(action: () => unknown, reason: XdrErrorReason, offset?: number): void {
  try {
    action();
  } catch (error) {
    assert.instance(error, XdrError);
    assert.instance(error, ProtocolError);
    assert.instance(error, QmpxError);
    assert.is((error as XdrError).reason, reason);
    assert.is((error as XdrError).code, 'PROTOCOL_ERROR');
    if (offset !== undefined) assert.is((error as XdrError).offset, offset);
    return;
  }
  assert.unreachable(`expected XdrError ${reason}`);
}

test('integers are big-endian 4 or 8 bytes, at their range limits too', () => {
  assert.is(hex((w) => w.writeInt(-1)), 'ffffffff');
  assert.is(hex((w) => w.writeInt(-0x8000_0000)), '80000000');
  assert.is(hex((w) => w.writeInt(0x7fff_ffff)), '7fffffff');
  assert.is(hex((w) => w.writeUint(0xffff_ffff)), 'ffffffff');
  assert.is(hex((w) => w.writeHyper(1795635009)), '000000006b073741'); // mitm-ev event seconds
  assert.is(hex((w) => w.writeHyper(-(1n << 63n))), '8000000000000000');
  assert.is(hex((w) => w.writeUhyper((1n << 64n) - 1n)), 'ffffffffffffffff');
  assert.is(hex((w) => w.writeBool(true)), '00000001');
  const r = reader('ffffffff' + 'ffffffff' + '8000000000000000' + 'ffffffffffffffff' + '00000000');
  assert.is(r.readInt(), -1);
  assert.is(r.readUint(), 0xffff_ffff);
  assert.is(r.readHyper(), -(1n << 63n));
  assert.is(r.readUhyper(), (1n << 64n) - 1n);
  assert.is(r.readBool(), false);
  assert.is(r.remaining, 0);
});

test('strings carry a byte length and zero padding to 4 (bytes from the captures)', () => {
  assert.is(hex((w) => w.writeString('lab1')), '000000046c616231');
  assert.is(hex((w) => w.writeString('qemu:///system')), '0000000e71656d753a2f2f2f73797374656d0000');
  assert.is(hex((w) => w.writeString('')), '00000000');
  assert.is(hex((w) => w.writeString('é')), '00000002c3a90000');
  for (const text of ['', 'a', 'ab', 'abc', 'abcd', 'abcde', '\ufeffBOM kept', 'QEMU ‘(’ 🚀']) {
    const writer = new XdrWriter();
    writer.writeString(text);
    assert.is(writer.byteLength % 4, 0);
    const r = new XdrReader(writer.toBuffer());
    assert.is(r.readString(), text);
    r.expectEnd();
  }
});

test('opaque, optional and array round-trip', () => {
  const uuid = Buffer.from('3a1676389b404ecb9fad87007c96f632', 'hex');
  const writer = new XdrWriter();
  writer.writeOpaqueFixed(uuid, 16);
  writer.writeOpaque(Buffer.from([1, 2, 3]), 8);
  writer.writeOptional<string>(null, (w, v) => w.writeString(v));
  writer.writeOptional('x', (w, v) => w.writeString(v));
  writer.writeArray([0, 1, 2], 20, (w, v) => w.writeInt(v));
  assert.is(
    writer.toBuffer().toString('hex'),
    uuid.toString('hex') + '00000003' + '01020300' + '00000000' + '00000001' + '0000000178000000' + '00000003000000000000000100000002',
  );
  const r = new XdrReader(writer.toBuffer());
  assert.equal(r.readOpaqueFixed(16), uuid);
  assert.equal(r.readOpaque(8), Buffer.from([1, 2, 3]));
  assert.is(r.readOptional((x) => x.readString()), null);
  assert.is(r.readOptional((x) => x.readString()), 'x');
  assert.equal(r.readArray(20, (x) => x.readInt()), [0, 1, 2]);
  r.expectEnd();
});

test('reading past the end throws overrun with the offset, whole values only', () => {
  throwsXdr(() => reader('000000').readInt(), 'overrun', 0);
  throwsXdr(() => reader('00000000000000').readHyper(), 'overrun', 0);
  throwsXdr(() => reader('00000005616263').readString(), 'overrun', 4);
  throwsXdr(() => reader('000000036162').readString(), 'overrun', 4);
  throwsXdr(() => reader('00000003616263').readString(), 'overrun', 7); // padding missing
  throwsXdr(() => reader('00000001').readOptional((r) => r.readInt()), 'overrun', 4);
  throwsXdr(() => reader('00000002' + '00000001').readArray(5, (r) => r.readInt()), 'overrun', 8);
  throwsXdr(() => reader('0102').readOpaqueFixed(16), 'overrun', 0);
});

test('bad values throw typed errors: limits, UTF-8, leftovers', () => {
  throwsXdr(() => reader('00400001').readString(), 'too-long', 0); // 4 MiB + 1
  throwsXdr(() => reader('00000005' + '6162636465000000').readString(4), 'too-long', 0);
  throwsXdr(() => reader('ffffffff').readOpaque(16), 'too-long', 0);
  throwsXdr(() => reader('00000015').readArray(20, (r) => r.readInt()), 'too-many-items', 0);
  throwsXdr(() => reader('00000002' + 'c3280000').readString(), 'bad-utf8', 4);
  throwsXdr(() => reader('00000002' + 'eda00000').readString(), 'bad-utf8', 4); // an encoded surrogate
  throwsXdr(() => decodeXdr({ encode: () => undefined, decode: (r) => r.readInt() }, Buffer.alloc(8)), 'trailing-bytes', 4);
  const lenient = decodeXdr({ encode: () => undefined, decode: (r) => r.readInt() }, Buffer.alloc(8), { allowTrailing: true });
  assert.is(lenient, 0);
  assert.throws(() => new XdrReader(Buffer.alloc(4), 2, 8), RangeError);
});

test('lenient where libvirt is: any non-zero bool or optional marker, unchecked padding', () => {
  assert.is(reader('00000000').readBool(), false);
  for (const word of ['00000001', '00000002', '01000000', 'ffffffff']) assert.is(reader(word).readBool(), true, word);
  // go-libvirt's CONNECT_OPEN: the name's "present" marker is the bytes 01 00 00 00.
  const r = reader('01000000' + '0000000e' + Buffer.from('qemu:///system').toString('hex') + '0000' + '00000000');
  assert.is(r.readOptional((x) => x.readString()), 'qemu:///system');
  assert.is(r.readUint(), 0);
  r.expectEnd();
  assert.is(reader('ffffffff' + '00000007').readOptional((x) => x.readInt()), 7);
  assert.is(reader('00000001' + '61ff0102').readString(), 'a');
  assert.equal(reader('0102' + 'ffff').readOpaqueFixed(2), Buffer.from([1, 2]));
  // The padding itself must still be there, and the writer stays canonical.
  throwsXdr(() => reader('00000001' + '6100').readString(), 'overrun', 5);
  assert.is(hex((w) => { w.writeBool(true); w.writeString('a'); }), '00000001' + '00000001' + '61000000');
});

test('the writer refuses values XDR cannot carry', () => {
  throwsXdr(() => new XdrWriter().writeInt(0x8000_0000), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeInt(1.5), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeInt(Number.NaN), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeUint(-1), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeHyper(2 ** 53), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeHyper(1n << 63n), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeUhyper(-1n), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeString('a\ud800b'), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeString('abcde', 4), 'too-long');
  throwsXdr(() => new XdrWriter().writeOpaqueFixed(Buffer.alloc(15), 16), 'out-of-range');
  throwsXdr(() => new XdrWriter().writeOpaque(Buffer.alloc(9), 8), 'too-long');
  throwsXdr(() => new XdrWriter().writeArray([1, 2, 3], 2, (w, v) => w.writeInt(v)), 'too-long');
  const small = new XdrWriter({ maxBytes: 8 });
  small.writeHyper(1);
  throwsXdr(() => small.writeInt(1), 'too-large', 8);
});

test('the writer grows past its first allocation and keeps earlier bytes', () => {
  const writer = new XdrWriter();
  const text = 'x'.repeat(10_000);
  writer.writeInt(7);
  writer.writeString(text);
  writer.writeInt(8);
  const r = new XdrReader(writer.toBuffer());
  assert.is(r.readInt(), 7);
  assert.is(r.readString(), text);
  assert.is(r.readInt(), 8);
});

test('a reader over a slice reads only the slice', () => {
  const bytes = Buffer.from('ffffffff00000001ffffffff', 'hex');
  const r = new XdrReader(bytes.subarray(4, 8));
  assert.is(r.readInt(), 1);
  throwsXdr(() => r.readInt(), 'overrun', 4);
  const ranged = new XdrReader(bytes, 4, 8);
  assert.is(ranged.readInt(), 1);
  assert.is(ranged.offset, 8);
});

const record: XdrCodec<{ id: number; flags: number; big: bigint; name: string; note: string | null; blob: Buffer; list: number[] }> = {
  encode(writer, value) {
    writer.writeInt(value.id);
    writer.writeUint(value.flags);
    writer.writeHyper(value.big);
    writer.writeString(value.name);
    writer.writeOptional(value.note, (w, v) => w.writeString(v));
    writer.writeOpaque(value.blob, 64);
    writer.writeArray(value.list, 8, (w, v) => w.writeInt(v));
  },
  decode(reader) {
    return {
      id: reader.readInt(),
      flags: reader.readUint(),
      big: reader.readHyper(),
      name: reader.readString(),
      note: reader.readOptional((r) => r.readString()),
      blob: reader.readOpaque(64),
      list: reader.readArray(8, (r) => r.readInt()),
    };
  },
};

test('property: any well-formed value round-trips, and any truncation throws XdrError', () => {
  const values = fc.record({
    id: fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }),
    flags: fc.integer({ min: 0, max: 0xffff_ffff }),
    big: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
    name: fc.string({ unit: 'grapheme', maxLength: 40 }),
    note: fc.option(fc.string({ unit: 'binary', maxLength: 10 }).filter((text) => (text as unknown as { isWellFormed(): boolean }).isWellFormed()), { nil: null }),
    blob: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    list: fc.array(fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }), { maxLength: 8 }),
  }).map((value) => ({ ...value })); // fc.record builds null-prototype objects
  fc.assert(
    fc.property(values, fc.nat(), (value, cut) => {
      const bytes = encodeXdr(record, value);
      assert.equal(decodeXdr(record, bytes), value);
      const truncated = bytes.subarray(0, cut % bytes.length);
      try {
        decodeXdr(record, truncated);
        return false;
      } catch (error) {
        return error instanceof XdrError;
      }
    }),
    { numRuns: 300 },
  );
});

test('property: random bytes either decode or throw XdrError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
      try {
        decodeXdr(record, bytes, { allowTrailing: true });
      } catch (error) {
        return error instanceof XdrError;
      }
      return true;
    }),
    { numRuns: 500 },
  );
});

test.run();
