/** Escapes text for use in XML character data and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

export type XmlScalar = string | number | boolean | Date;

/** `<name>text</name>`, or nothing when the value is absent. */
export function textElement(name: string, value: XmlScalar | undefined): string {
  if (value === undefined) return '';
  const text = value instanceof Date ? value.toISOString() : String(value);
  return `<${name}>${escapeXml(text)}</${name}>`;
}

/** `<name attr="…">children</name>`; the children are already rendered XML. */
export function element(name: string, children: readonly string[], attributes: Record<string, string> = {}): string {
  const rendered = Object.entries(attributes)
    .map(([key, value]) => ` ${key}="${escapeXml(value)}"`)
    .join('');
  return `<${name}${rendered}>${children.join('')}</${name}>`;
}

/** The EC2 list shape: `<name><item>…</item><item>…</item></name>`. */
export function itemSet(name: string, items: readonly (readonly string[])[]): string {
  return element(
    name,
    items.map((fields) => element('item', fields)),
  );
}

/** Prefixes the XML declaration that AWS puts in front of every Query response. */
export function xmlDocument(root: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${root}`;
}

/** An EC2 list of strings: `<name><item>text</item>…</name>`. */
export function textItemSet(name: string, values: readonly string[]): string {
  return element(
    name,
    values.map((value) => textElement('item', value)),
  );
}
