/** The strict XML reader: what it keeps, and every malformation it must refuse. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseXml, XmlSyntaxError } from '../../lib/cli/xml.js';

test('elements, namespaces, attributes and text', () => {
  const root = parseXml(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE domain>
<!-- a comment -->
<domain type='kvm' xmlns:q="urn:q" xmlns="urn:default">
  <name>lab1</name>
  <q:arg value="a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233;&#x263A;"/>
  <raw><![CDATA[<not markup> & co]]></raw>
  <?processing instruction?>
</domain>
`);
  assert.is(root.localName, 'domain');
  assert.is(root.namespace, 'urn:default');
  assert.is(root.attributes.get('type'), 'kvm');
  assert.equal(root.children.map((child) => [child.namespace, child.localName]), [
    ['urn:default', 'name'],
    ['urn:q', 'arg'],
    ['urn:default', 'raw'],
  ]);
  assert.is(root.children[0]!.text, 'lab1');
  assert.is(root.children[1]!.attributes.get('value'), `a & b <c> "d" 'e' é☺`);
  assert.is(root.children[1]!.line, 6);
  assert.is(root.children[2]!.text, '<not markup> & co');
});

test('attribute values: literal whitespace normalised to spaces, character references kept', () => {
  const root = parseXml('<a v="x\ty\r\nz&#10;w"/>');
  assert.is(root.attributes.get('v'), 'x y z\nw');
});

test('a byte order mark is skipped', () => {
  assert.is(parseXml('\uFEFF<a/>').localName, 'a');
});

const MALFORMED: Array<[string, RegExp]> = [
  ['<a><b></a>', /line 1, column 7: closing tag <\/a> does not match <b>/],
  ['<a>', /<a> is never closed/],
  ['<a></a><b/>', /a second root element/],
  ['text<a/>', /text outside the root element/],
  ['<a/>tail', /text outside the root element/],
  ['<a x="1" x="2"/>', /duplicate attribute x/],
  ['<a x=1/>', /expected a quoted value for attribute x/],
  ['<a x="<"/>', /"<" inside the value of attribute x/],
  ['<a>&nbsp;</a>', /undefined entity &nbsp;/],
  ['<a>fish & chips</a>', /"&" must start an entity reference/],
  ['<a>&#0;</a>', /invalid character reference/],
  ['<p:a/>', /namespace prefix "p" of p:a .* is not declared/],
  ['<a p:x="1"/>', /namespace prefix "p" of p:x/],
  ['<a><!-- x -- y --></a>', /"--" is not allowed inside a comment/],
  ['<a><!-- x </a>', /unterminated comment/],
  ['<!DOCTYPE a [<!ENTITY x "y">]><a/>', /DOCTYPE internal subsets are not supported/],
  ['<a>]]></a>', /"]]>" in character data/],
  ['</a>', /closing tag <\/a> with no element open/],
  ['', /no root element/],
  ['<a\n  b="1"c="2"/>', /line 2, column \d+: expected whitespace before an attribute/],
];

for (const [source, expected] of MALFORMED) {
  test(`refuses ${JSON.stringify(source)}`, () => {
    try {
      parseXml(source);
      assert.unreachable('parsed');
    } catch (error) {
      assert.instance(error, XmlSyntaxError);
      assert.match((error as Error).message, expected);
    }
  });
}

test.run();
