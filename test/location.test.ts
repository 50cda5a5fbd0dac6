import t from 'tap'
import { type Location, isUnder, parseRepoLocation } from '../src/runners/location'

/** Repository addresses against allowed prefixes, parsed and normalised, never compared as text. */

function parsed(text: string): Location {
  const location = parseRepoLocation(text)
  if (typeof location === 'string') throw new Error(`${text} ${location}`)
  return location
}

function under(url: string, prefix: string): boolean {
  const location = parseRepoLocation(url)
  return typeof location !== 'string' && isUnder(location, parsed(prefix))
}

t.test('every form git fetches from parses to scheme, user, host, port and path segments', (t) => {
  t.same(parsed('https://Git.Example:443/team//echo.git'), { scheme: 'https', user: '', host: 'git.example', port: '', segments: ['team', 'echo.git'] })
  t.same(parsed('http://git.example:8080/team/'), { scheme: 'http', user: '', host: 'git.example', port: '8080', segments: ['team'] })
  t.same(parsed('ssh://git@Git.Example:22/srv/team'), { scheme: 'ssh', user: 'git', host: 'git.example', port: '', segments: ['srv', 'team'] })
  t.same(parsed('ssh://git@git.example/~/team'), { scheme: 'ssh', user: 'git', host: 'git.example', port: '', segments: ['~', 'team'] })
  t.same(parsed('git@git.example:team/echo.git'), { scheme: 'ssh', user: 'git', host: 'git.example', port: '', segments: ['~', 'team', 'echo.git'] }, 'scp-like paths are relative to the home directory')
  t.same(parsed('git.example:/srv/echo'), { scheme: 'ssh', user: '', host: 'git.example', port: '', segments: ['srv', 'echo'] })
  t.same(parsed('git@git.example:~alice/x'), { scheme: 'ssh', user: 'git', host: 'git.example', port: '', segments: ['~alice', 'x'] })
  t.same(parsed('git://git.example:9418/team/x'), { scheme: 'git', user: '', host: 'git.example', port: '', segments: ['team', 'x'] })
  t.same(parsed('file:///srv/repos/x'), { scheme: 'file', user: '', host: '', port: '', segments: ['srv', 'repos', 'x'] })
  t.same(parsed('/srv/repos/x/'), parsed('file://localhost/srv/repos/x'), 'a path is a file:// URL')
  t.same(parsed('https://git.example/team/%2f%7e'), { scheme: 'https', user: '', host: 'git.example', port: '', segments: ['team', '%2F%7E'] }, 'percent escapes in one case, not decoded')
  t.end()
})

t.test('anything else does not parse, and says why', (t) => {
  const refused: [string, RegExp][] = [
    ['', /is empty/],
    ['-uhttps://x/', /starts with "-"/],
    ['repos/echo', /is not a URL/],
    ['./echo', /is not a URL/],
    ['ext::sh -c touch% /tmp/pwned', /white space/],
    ['ext::sh', /is not a URL/],
    ['fd::17', /is not a URL/],
    ['ftp://git.example/x', /uses ftp:\/\//],
    ['git+ssh://git.example/x', /uses git\+ssh:\/\//],
    ['https://user:secret@git.example/x', /carries a password/],
    ['https://git.example@evil.example/x', /carries a user name/],
    ['git://alice@git.example/x', /carries a user name/],
    ['https://git.example/x?service=git-upload-pack', /has a query/],
    ['https://git.example/x#frag', /has a query or fragment/],
    ['file://server/share/x', /names a host/],
    ['https:///x', /is not a valid URL|names no host/],
    ['https://git.example/team/../evil', /has a "\." or "\.\." path segment/],
    ['https://git.example/team/%2e%2E/evil', /"\.\." path segment/],
    ['https://git.example/team/./x', /"\." or "\.\."/],
    ['git@git.example:../other/repo', /"\.\." path segment/],
    ['/srv/repos/../elsewhere', /"\.\." path segment/],
    ['/srv/repos/a\\..\\b', /backslash/],
    ['/srv/repos/x\n', /control character/],
  ]
  for (const [text, why] of refused) t.match(parseRepoLocation(text), why, JSON.stringify(text))
  t.end()
})

t.test('an address is under a prefix when scheme, user, host and port match and the path continues on a segment boundary', (t) => {
  const https = 'https://git.example/team'
  t.ok(under('https://git.example/team/echo.git', https))
  t.ok(under('https://GIT.EXAMPLE:443/team/echo.git', https), 'host case and the default port do not matter')
  t.ok(under('https://git.example/team', https), 'the prefix itself')
  t.ok(under('https://git.example/team/echo', `${https}/`), 'with or without the trailing slash')
  // The bypasses of issue 9: a prefix without a trailing slash, and look-alike hosts.
  t.notOk(under('https://git.example/team-b/echo.git', https), 'a look-alike path')
  t.notOk(under('https://git.example/team.evil/x', https))
  t.notOk(under('https://git.example.evil.net/team/x', 'https://git.example'), 'a look-alike host')
  t.notOk(under('https://git.example@evil.net/team/x', 'https://git.example'), '@host')
  t.notOk(under('https://git.example:8443/team/x', https), 'another port')
  t.notOk(under('http://git.example/team/x', https), 'another scheme')
  t.notOk(under('https://git.example/%74eam/x', https), 'an escaped path is compared as written (never admits more)')

  const scp = 'git@git.example:team/'
  t.ok(under('git@git.example:team/echo.git', scp))
  t.ok(under('ssh://git@git.example/~/team/echo.git', scp), 'the same place as an ssh:// URL')
  t.ok(under('ssh://git@git.example:22/~/team/echo.git', scp))
  t.notOk(under('git@git.example:~other/team/x', scp), "another user's home")
  t.notOk(under('git@git.example:/team/x', scp), 'an absolute path')
  t.notOk(under('other@git.example:team/x', scp), 'another ssh user')
  t.notOk(under('git.example:team/x', scp), 'no ssh user where the prefix names one')
  t.notOk(under('git@git.example:teams/x', scp))
  t.ok(under('git@git.example:anything/x', 'git@git.example:'), 'a whole home directory')

  t.ok(under('/srv/repos/echo', '/srv/repos/'))
  t.ok(under('file:///srv/repos/echo', '/srv/repos'))
  t.notOk(under('/srv/repos-old/echo', '/srv/repos'))
  t.notOk(under('/srv/repos/../elsewhere', '/srv/repos/'))
  t.end()
})
