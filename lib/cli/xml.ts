/**
 * A small, strict, namespace-aware XML reader: enough of XML 1.0 to read a
 * libvirt domain definition and to refuse, with line and column, anything
 * that is not well-formed. It exists so `qmpx launch --libvirt-xml` needs no
 * XML dependency; it keeps elements, resolved attributes and nothing else.
 *
 * Handled: the XML declaration, processing instructions, comments, CDATA,
 * a DOCTYPE without an internal subset, the five predefined entities and
 * character references, attribute-value whitespace normalisation, xmlns and
 * xmlns:prefix declarations. Refused: mismatched or unclosed tags, duplicate
 * attributes, unbound prefixes, undefined entities, `<` in attribute values,
 * text or a second element outside the root, DOCTYPE internal subsets.
 */

/** An element: its namespace URI ('' for none), local name, attributes and child elements. */
export interface XmlElement {
  readonly namespace: string;
  readonly localName: string;
  /** The name as written, with its prefix. */
  readonly qualifiedName: string;
  /** Unprefixed attributes by local name (namespaced attributes under `{uri}local`). */
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** Non-whitespace character data directly inside this element, concatenated. */
  readonly text: string;
  readonly line: number;
  readonly column: number;
}

/** The document is not well-formed XML (or uses a feature this reader refuses). */
export class XmlSyntaxError extends Error {
  override readonly name = 'XmlSyntaxError';

  constructor(
    reason: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`line ${line}, column ${column}: ${reason}`);
  }
}

const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const NAME = /[A-Za-z_:\u00C0-\uFFFF][\w.:\u00B7\u00C0-\uFFFF-]*/y;
const PREDEFINED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

interface OpenElement {
  qualifiedName: string;
  rawAttributes: Array<[string, string]>;
  scope: Map<string, string>;
  children: XmlElement[];
  text: string;
  line: number;
  column: number;
}

/** Parses a whole document and returns its root element. Throws XmlSyntaxError. */
export function parseXml(source: string): XmlElement {
  const text = source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  let position = 0;
  const stack: OpenElement[] = [];
  let root: XmlElement | undefined;

  const fail = (reason: string, at = position): never => {
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    throw new XmlSyntaxError(reason, line, at - before.lastIndexOf('\n'));
  };
  const skipPast = (terminator: string, what: string): string => {
    const end = text.indexOf(terminator, position);
    if (end === -1) fail(`unterminated ${what}`);
    const body = text.slice(position, end);
    position = end + terminator.length;
    return body;
  };
  const readName = (): string => {
    NAME.lastIndex = position;
    const match = NAME.exec(text);
    if (!match) fail('expected a name');
    position += match![0].length;
    return match![0];
  };
  const skipSpace = (): boolean => {
    const start = position;
    while (/[ \t\n]/.test(text.charAt(position))) position++;
    return position > start;
  };
  const decode = (raw: string, at: number): string =>
    raw.replace(/&([^;&\s<]*);?/g, (whole, entity: string, offset: number) => {
      if (!whole.endsWith(';')) fail('"&" must start an entity reference ending in ";"', at + offset);
      if (entity in PREDEFINED_ENTITIES) return PREDEFINED_ENTITIES[entity]!;
      const code = /^#x[0-9A-Fa-f]+$/.test(entity) ? parseInt(entity.slice(2), 16) : /^#[0-9]+$/.test(entity) ? Number(entity.slice(1)) : NaN;
      if (Number.isNaN(code)) fail(`undefined entity &${entity};`, at + offset);
      if (code === 0 || code > 0x10ffff) fail(`invalid character reference &${entity};`, at + offset);
      return String.fromCodePoint(code);
    });

  while (position < text.length) {
    const open = stack[stack.length - 1];
    if (text.startsWith('<!--', position)) {
      position += 4;
      if (skipPast('-->', 'comment').includes('--')) fail('"--" is not allowed inside a comment');
    } else if (text.startsWith('<?', position)) {
      position += 2;
      skipPast('?>', 'processing instruction');
    } else if (text.startsWith('<![CDATA[', position)) {
      if (!open) fail('CDATA outside the root element');
      position += 9;
      open!.text += skipPast(']]>', 'CDATA section');
    } else if (text.startsWith('<!DOCTYPE', position)) {
      if (root || open) fail('DOCTYPE after the root element started');
      position += 9;
      const body = skipPast('>', 'DOCTYPE');
      if (body.includes('[')) fail('DOCTYPE internal subsets are not supported');
    } else if (text.startsWith('</', position)) {
      const start = position;
      position += 2;
      const name = readName();
      skipSpace();
      if (text.charAt(position) !== '>') fail('expected ">" to end the closing tag');
      position++;
      if (!open) fail(`closing tag </${name}> with no element open`, start);
      if (open!.qualifiedName !== name) fail(`closing tag </${name}> does not match <${open!.qualifiedName}>`, start);
      stack.pop();
      const element = finishElement(open!, fail);
      if (stack.length > 0) stack[stack.length - 1]!.children.push(element);
      else root = element;
    } else if (text.charAt(position) === '<') {
      const start = position;
      if (root) fail('a second root element', start);
      position++;
      const qualifiedName = readName();
      const rawAttributes: Array<[string, string]> = [];
      for (;;) {
        const spaced = skipSpace();
        if (text.startsWith('/>', position) || text.charAt(position) === '>') break;
        if (!spaced) fail('expected whitespace before an attribute');
        const attributeName = readName();
        skipSpace();
        if (text.charAt(position) !== '=') fail(`expected "=" after attribute ${attributeName}`);
        position++;
        skipSpace();
        const quote = text.charAt(position);
        if (quote !== '"' && quote !== "'") fail(`expected a quoted value for attribute ${attributeName}`);
        position++;
        const valueStart = position;
        const raw = skipPast(quote, `value of attribute ${attributeName}`);
        if (raw.includes('<')) fail(`"<" inside the value of attribute ${attributeName}`, valueStart + raw.indexOf('<'));
        if (rawAttributes.some(([existing]) => existing === attributeName)) fail(`duplicate attribute ${attributeName}`, valueStart);
        // XML attribute-value normalisation: literal whitespace becomes a space; &#10; and friends survive.
        rawAttributes.push([attributeName, decode(raw.replace(/[\t\n]/g, ' '), valueStart)]);
      }
      const scope = new Map(open?.scope ?? [['xml', XML_NAMESPACE]]);
      for (const [name, value] of rawAttributes) {
        if (name === 'xmlns') scope.set('', value);
        else if (name.startsWith('xmlns:')) scope.set(name.slice(6), value);
      }
      const before = text.slice(0, start);
      const element: OpenElement = {
        qualifiedName,
        rawAttributes,
        scope,
        children: [],
        text: '',
        line: before.split('\n').length,
        column: start - before.lastIndexOf('\n'),
      };
      if (text.startsWith('/>', position)) {
        position += 2;
        const done = finishElement(element, fail);
        if (open) open.children.push(done);
        else root = done;
      } else {
        position++;
        stack.push(element);
      }
    } else {
      const start = position;
      const end = text.indexOf('<', position);
      position = end === -1 ? text.length : end;
      const chunk = text.slice(start, position);
      if (chunk.includes(']]>')) fail('"]]>" in character data', start + chunk.indexOf(']]>'));
      if (open) open.text += decode(chunk, start);
      else if (chunk.trim() !== '') fail('text outside the root element', start);
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.qualifiedName}> is never closed`);
  if (!root) fail('no root element');
  return root!;
}

function finishElement(open: OpenElement, fail: (reason: string, at?: number) => never): XmlElement {
  const resolve = (qualifiedName: string, isAttribute: boolean): [string, string] => {
    const colon = qualifiedName.indexOf(':');
    if (colon === -1) return [isAttribute ? '' : (open.scope.get('') ?? ''), qualifiedName];
    const prefix = qualifiedName.slice(0, colon);
    const uri = open.scope.get(prefix);
    if (uri === undefined) fail(`namespace prefix "${prefix}" of ${qualifiedName} (line ${open.line}) is not declared`);
    return [uri!, qualifiedName.slice(colon + 1)];
  };
  const [namespace, localName] = resolve(open.qualifiedName, false);
  const attributes = new Map<string, string>();
  for (const [name, value] of open.rawAttributes) {
    if (name === 'xmlns' || name.startsWith('xmlns:')) continue;
    const [uri, local] = resolve(name, true);
    attributes.set(uri === '' ? local : `{${uri}}${local}`, value);
  }
  return {
    namespace,
    localName,
    qualifiedName: open.qualifiedName,
    attributes,
    children: open.children,
    text: open.text.trim(),
    line: open.line,
    column: open.column,
  };
}
