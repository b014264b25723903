/**
 * The `<qemu:commandline>` block of a libvirt domain definition, read the way
 * libvirt reads it: every `<qemu:arg value='...'/>` is one argv element,
 * used verbatim, and every `<qemu:env name='...' value='...'/>` one
 * environment variable (no value means the empty string).
 *
 *   <domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
 *     ...
 *     <qemu:commandline>
 *       <qemu:arg value='-newarg'/>
 *       <qemu:env name='QEMU_ENV' value='VAL'/>
 *     </qemu:commandline>
 *   </domain>
 *
 * The prefix may be anything bound to the namespace URI. Anything else in
 * that namespace (qemu:capabilities, qemu:override, qemu:deprecation tune
 * libvirt itself, not QEMU's argv) and any other element inside
 * qemu:commandline is refused, so a typo such as `<arg>` instead of
 * `<qemu:arg>` is reported instead of silently dropped.
 */
import { parseXml, XmlSyntaxError, type XmlElement } from './xml.js';

export const QEMU_NAMESPACE = 'http://libvirt.org/schemas/domain/qemu/1.0';

/** What a domain's `<qemu:commandline>` blocks ask for, in document order. */
export interface QemuCommandline {
  args: string[];
  env: Record<string, string>;
}

/** The domain XML is malformed or its qemu namespace holds something qmpx cannot apply. */
export class LibvirtXmlError extends Error {
  override readonly name = 'LibvirtXmlError';
}

/** libvirt's rule for qemu:env names. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads the `<qemu:commandline>` blocks of a domain XML document. Throws LibvirtXmlError. */
export function readQemuCommandline(xmlText: string, fileName = 'the domain XML'): QemuCommandline {
  let root: XmlElement;
  try {
    root = parseXml(xmlText);
  } catch (error) {
    if (error instanceof XmlSyntaxError) throw new LibvirtXmlError(`${fileName} is not well-formed XML: ${error.message}`);
    throw error;
  }
  if (root.namespace !== '' || root.localName !== 'domain') {
    throw new LibvirtXmlError(`${fileName}: the root element is <${root.qualifiedName}>, expected a libvirt <domain>`);
  }
  const result: QemuCommandline = { args: [], env: {} };
  const where = (element: XmlElement): string => `${fileName}, line ${element.line}`;
  for (const child of root.children) {
    if (child.namespace !== QEMU_NAMESPACE) continue;
    if (child.localName !== 'commandline') {
      throw new LibvirtXmlError(
        `${where(child)}: <${child.qualifiedName}> configures libvirt itself and cannot be applied by qmpx launch (only <qemu:commandline> can)`,
      );
    }
    for (const entry of child.children) {
      const known = entry.namespace === QEMU_NAMESPACE && (entry.localName === 'arg' || entry.localName === 'env');
      if (!known) {
        const hint = entry.namespace === '' && (entry.localName === 'arg' || entry.localName === 'env') ? ` (did you mean <qemu:${entry.localName}>?)` : '';
        throw new LibvirtXmlError(`${where(entry)}: unknown element <${entry.qualifiedName}> in <${child.qualifiedName}>${hint}`);
      }
      if (entry.localName === 'arg') {
        const value = entry.attributes.get('value');
        if (value === undefined) throw new LibvirtXmlError(`${where(entry)}: <${entry.qualifiedName}> has no value attribute`);
        result.args.push(value);
      } else {
        const name = entry.attributes.get('name');
        if (name === undefined) throw new LibvirtXmlError(`${where(entry)}: <${entry.qualifiedName}> has no name attribute`);
        if (!ENV_NAME.test(name)) {
          throw new LibvirtXmlError(
            `${where(entry)}: invalid environment name ${JSON.stringify(name)}: it must begin with a letter or underscore and contain only letters, digits and underscores`,
          );
        }
        result.env[name] = entry.attributes.get('value') ?? '';
      }
    }
  }
  return result;
}
