import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkHmpCommandLine, HMP_MAX_LINE_BYTES } from '../../lib/hmp/command-line.js';
import { UnsupportedError } from '../../lib/index.js';

function refusal(line: string): UnsupportedError {
  try {
    checkHmpCommandLine(line);
  } catch (error) {
    assert.instance(error, UnsupportedError);
    return error as UnsupportedError;
  }
  throw new Error(`${JSON.stringify(line)} was accepted`);
}

test('ordinary lines pass, including non-ASCII and astral characters', () => {
  for (const line of ['info status', '', '   ', 'qom-get /machine type', 'device_add usb-kbd,id=kbd0', 'info é', 'name 🎉', '~!@#$%^&*()_+{}|:"<>?`-=[]\\;\',./']) {
    checkHmpCommandLine(line);
  }
});

test('TAB, CR, LF and ESC are refused with what the editor would do instead', () => {
  assert.match(refusal('info\tstatus').message, /TAB .*complete.* at index 4/);
  assert.match(refusal('info status\n').message, /line feed .*separate command.* at index 11/);
  assert.match(refusal('stop\r\ncont').message, /carriage return .* at index 4/);
  assert.match(refusal('\x1b[Ainfo').message, /ESC .*cursor-key.* at index 0/);
  assert.match(refusal('info statuss\x7f').message, /DEL .*delete.* at index 12/);
});

test('every other C0 and C1 control character is refused by code point', () => {
  for (const code of [0x00, 0x01, 0x03, 0x08, 0x15, 0x1f, 0x80, 0x9b, 0x9f]) {
    const message = refusal(`info${String.fromCharCode(code)}`).message;
    assert.match(message, /nothing was sent/);
    assert.match(message, /at index 4/);
  }
  assert.match(refusal('a\x03').message, /U\+0003/);
});

test('unpaired surrogates are refused; pairs are fine', () => {
  assert.match(refusal('name \ud83c').message, /unpaired UTF-16 surrogate at index 5/);
  assert.match(refusal('name \udf89x').message, /unpaired .* at index 5/);
  checkHmpCommandLine('name \ud83c\udf89');
});

test(`lines are limited to ${HMP_MAX_LINE_BYTES} bytes of UTF-8, not characters`, () => {
  checkHmpCommandLine('x'.repeat(HMP_MAX_LINE_BYTES));
  assert.match(refusal('x'.repeat(HMP_MAX_LINE_BYTES + 1)).message, /4096 bytes long .* keeps only 4095/);
  // 2,048 two-byte characters: 4,096 bytes although only 2,048 characters.
  assert.match(refusal('é'.repeat(2048)).message, /4096 bytes/);
  checkHmpCommandLine(`${'é'.repeat(2047)}x`);
});

test.run();
