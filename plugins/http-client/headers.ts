/**
 * Request headers from user text (the `headers` parameter, the content type) checked
 * before they reach undici, which throws a bare "invalid header" error for a character
 * HTTP cannot carry. A header value is printable ASCII (RFC 9110 allows obs-text, which
 * servers read as Latin-1 or not at all, so quark does not send it).
 */

/** RFC 9110 token characters: what a header name may hold. */
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const badValueCharacter = /[^\t\x20-\x7e]/u;

const codePoint = (character: string) => `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why a header cannot be sent, in words that name it; undefined when it can. */
export function headerProblem(name: string, value: string): string | undefined {
  if (!tokenPattern.test(name)) {
    return `${JSON.stringify(name)} is not an HTTP header name: letters, digits and !#$%&'*+-.^_\`|~ only`;
  }
  const bad = badValueCharacter.exec(value);
  if (bad) {
    return `the value of header "${name}" has a character HTTP headers cannot carry (${codePoint(bad[0])} at character ${[...value.slice(0, bad.index)].length + 1}): header values are printable ASCII; encode the text first (percent-encoding, or RFC 2047 if the server decodes it)`;
  }
  return undefined;
}

/** The first problem among the headers, or undefined. */
export function headersProblem(headers: Record<string, string>): string | undefined {
  for (const [name, value] of Object.entries(headers)) {
    const problem = headerProblem(name, value);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
