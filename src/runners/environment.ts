/**
 * Which environment variables a job may set on an exec lane that declares no `arguments`: only
 * names its `allowed_env` patterns admit (`["SRC", "WIDTH", "THUMB_*"]`: a name, or a prefix
 * ending in `*`). Nothing is admitted by default. An allowlist, because no denylist of dangerous
 * names is ever complete: PYTHONWARNINGS with BROWSER, JAVA_TOOL_OPTIONS, GIT_CONFIG_* and many
 * more each run code of the caller's choosing in a program that never asked for them.
 */

export type EnvPattern = { name: string } | { prefix: string }

/** A valid environment variable name (what exec hands arguments over as). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Variables that change how a program is loaded, what an interpreter or tool runs first, where it
 * sends traffic or which certificates it trusts. Not the boundary (the allowlist is): a pattern
 * that could admit one of these is refused at start, as a likely mistake. A lane that really wants
 * one declares it by name in `arguments`. Prefixes end in `*`; compared without regard to case.
 */
const LOADER_AND_INTERPRETER = [
  'PATH', 'HOME', 'SHELL', 'IFS', 'ENV', 'BASH_ENV', 'BASH_FUNC_*', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PROMPT_COMMAND', 'CDPATH', 'TMPDIR',
  'LD_*', 'DYLD_*', 'MALLOC_*', 'GCONV_PATH', 'LOCPATH', 'GLIBC_TUNABLES', 'NLSPATH', 'HOSTALIASES', 'RESOLV_*', 'LOCALDOMAIN',
  'NODE_*', 'NPM_*', 'PYTHON*', 'PERL*', 'RUBY*', 'GEM_*', 'BUNDLE_*', 'LUA_*', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'CLASSPATH',
  'DOTNET_*', 'CORECLR_*', 'COMPLUS_*', 'PHPRC', 'PHP_INI_SCAN_DIR', 'R_PROFILE*', 'R_ENVIRON*', 'TCLLIBPATH', 'GIT_*', 'SSH_*', 'GNUPGHOME',
  'BROWSER', 'EDITOR', 'VISUAL', 'PAGER', 'LESSOPEN', 'LESSCLOSE', 'MANPAGER',
  'OPENSSL_*', 'SSL_CERT_*', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'FTP_PROXY', 'NO_PROXY',
  'DISPENSERD_*',
]

/** Why a pattern list is wrong, or undefined; `where` names the setting in the message. */
export function parseAllowedEnv(raw: unknown, where: string): EnvPattern[] | string {
  if (!Array.isArray(raw)) return `"${where}" must be a list of environment variable names, each optionally ending in * (such as ["SRC", "THUMB_*"])`
  const patterns: EnvPattern[] = []
  for (const [i, entry] of raw.entries()) {
    const at = `${where}[${i}]`
    if (entry === '*') return `${at}: "*" would let a job set any variable (LD_PRELOAD, PATH, PYTHONWARNINGS, …): list the names your program reads, or prefixes such as "THUMB_*"`
    if (typeof entry !== 'string' || !ENV_NAME.test(entry.endsWith('*') ? entry.slice(0, -1) : entry)) {
      return `${at} must be an environment variable name (letters, digits, _; not starting with a digit), optionally ending in *`
    }
    const pattern = entry.endsWith('*') ? { prefix: entry.slice(0, -1) } : { name: entry }
    const risky = LOADER_AND_INTERPRETER.find((known) => overlaps(pattern, known))
    if (risky !== undefined) {
      return `${at}: ${JSON.stringify(entry)} would admit ${risky}, which changes how a program loads or runs: list narrower names, or declare the variable in "arguments" to accept it on purpose`
    }
    patterns.push(pattern)
  }
  return patterns
}

/** Whether `name` is admitted by one of `patterns`. */
export function isAllowedName(patterns: EnvPattern[], name: string): boolean {
  return patterns.some((pattern) => ('name' in pattern ? name === pattern.name : name.startsWith(pattern.prefix)))
}

/** Whether some name matches both `pattern` and the known entry (`NAME` or `PREFIX*`), ignoring case. */
function overlaps(pattern: EnvPattern, known: string): boolean {
  const knownPrefix = known.endsWith('*') ? known.slice(0, -1) : undefined
  if ('name' in pattern) {
    const name = pattern.name.toUpperCase()
    return knownPrefix === undefined ? name === known : name.startsWith(knownPrefix)
  }
  const prefix = pattern.prefix.toUpperCase()
  if (knownPrefix === undefined) return known.startsWith(prefix)
  return prefix.startsWith(knownPrefix) || knownPrefix.startsWith(prefix)
}
