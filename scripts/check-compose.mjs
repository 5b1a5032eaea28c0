// `npm run check:compose [-- <compose file>] [--project-directory <dir>]`: validates docker-compose.yml where
// `docker compose config` is not available (no Docker engine or compose plugin in CI). The file is interpolated with
// the defaults it writes (`${VAR:-default}`, as on a machine with none of those variables set), validated against the
// official compose-spec JSON schema (scripts/schemas/compose-spec.json, see its README) with ajv, then checked for
// what this project requires: mounted files exist, images pinned, ports on 127.0.0.1, the gateway's and stubs' env in
// .env.example, healthchecks behind `service_healthy`, Prometheus/k6/Alloy wiring, and the Grafana dashboards
// (JSON, schemaVersion of the pinned Grafana, unique panel ids, provisioned datasource uids). When `docker compose`
// works, `docker compose config -q` runs too. Prints one line per check; exits 1 with every reason on failure.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import Ajv from 'ajv'
import YAML from 'yaml'
import { ROOT } from './lib/stack.mjs'

const require = createRequire(import.meta.url)
const SCHEMA = join(ROOT, 'scripts', 'schemas', 'compose-spec.json')
// The dashboard schemaVersion each pinned Grafana writes (its DASHBOARD_SCHEMA_VERSION); bumping the image in
// docker-compose.yml without adding its version here fails, so the dashboards are re-checked against it.
const GRAFANA_SCHEMA_VERSION = { '13.2.0': 42 }
const MIN_SCHEMA_VERSION = 36
// Services built from this repository's Dockerfile: their environment must be what src/config.ts reads.
const NODE_SERVICES = ['gateway', 'auth', 'user', 'order', 'model']

const failures = []
const fail = (msg) => { failures.push(msg); console.log(`FAIL ${msg}`) }
const ok = (msg) => console.log(`ok   ${msg}`)
/** Runs one named check; a check that throws fails with its message instead of stopping the others. */
function check (name, fn) {
  const before = failures.length
  try { fn() } catch (err) { fail(`${name}: ${err.message}`) }
  if (failures.length === before) ok(name)
}

function parseArgs (argv) {
  let file
  let projectDir
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--project-directory') projectDir = argv[++i]
    else if (argv[i].startsWith('-')) throw new Error(`unknown option ${argv[i]}; use: check-compose.mjs [compose file] [--project-directory dir]`)
    else file = argv[i]
  }
  file = resolve(file ?? join(ROOT, 'docker-compose.yml'))
  return { file, projectDir: resolve(projectDir ?? dirname(file)) }
}

/** What `${NAME:?…}` interpolates to here: no value ships, so a stand-in the checks can recognise. */
function requiredPlaceholder (name) {
  return `<required ${name}>`
}

/**
 * Compose's variable interpolation with an empty environment: `${V:-d}`/`${V-d}` give d, `${V:+a}` gives '', `${V}`
 * and `$V` give '' (compose warns), `${V:?msg}` is an error compose reports (here a placeholder: the file requires it
 * on purpose), `$$` is a literal `$`. Hand-written because compose's own implementation is Go; these few rules are
 * all the file may use.
 */
function interpolate (value, path, problems) {
  const ESCAPED = '\u0000'
  let out = value.replaceAll('$$', ESCAPED)
  // Innermost first, so a default may itself hold a variable.
  const braced = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^${}]*))?\}/
  for (let match = braced.exec(out); match; match = braced.exec(out)) {
    const [whole, name, op, arg = ''] = match
    let replacement = ''
    if (op === ':-' || op === '-') replacement = arg
    // A required secret (`${V:?msg}`, no fallback on purpose): a placeholder stands in, and the services check it.
    else if (op === ':?' || op === '?') replacement = requiredPlaceholder(name)
    else if (op === undefined) problems.push(`${path}: \${${name}} has no default; write \${${name}:-value}`)
    out = out.replace(whole, replacement)
  }
  out = out.replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, name) => { problems.push(`${path}: $${name} has no default`); return '' })
  if (out.includes('$')) problems.push(`${path}: unbalanced or unsupported interpolation in "${value}"`)
  return out.replaceAll(ESCAPED, '$')
}

function interpolateTree (node, path, problems) {
  if (typeof node === 'string') return interpolate(node, path, problems)
  if (Array.isArray(node)) return node.map((v, i) => interpolateTree(v, `${path}[${i}]`, problems))
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateTree(v, `${path}.${k}`, problems)]))
  }
  return node
}

/** A service's environment as a map, from either the mapping or the `KEY=VALUE` list form. */
function envOf (service) {
  const env = service.environment ?? {}
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]))
  return Object.fromEntries(env.map((entry) => { const i = entry.indexOf('='); return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)] }))
}

/** Bind mounts as { source, target, readOnly }; named volumes as { volume, target }. */
function mountsOf (service) {
  return (service.volumes ?? []).map((v) => {
    if (typeof v === 'object') {
      return v.type === 'bind' ? { source: v.source, target: v.target, readOnly: Boolean(v.read_only) } : { volume: v.source, target: v.target }
    }
    const [source, target, mode = ''] = v.split(':')
    if (target === undefined) return { anonymous: true, target: source }
    const isPath = source.startsWith('.') || source.startsWith('/') || source.startsWith('~')
    return isPath ? { source, target, readOnly: mode.split(',').includes('ro') } : { volume: source, target }
  })
}

/** "name:tag" / "name@sha256:…" → its version part, or undefined when the reference has none. */
function imageVersion (image) {
  if (image.includes('@sha256:')) return image.split('@')[1]
  const lastSlash = image.lastIndexOf('/')
  const colon = image.indexOf(':', lastSlash + 1)
  return colon < 0 ? undefined : image.slice(colon + 1)
}

function checkImagePinned (where, image) {
  const version = imageVersion(image)
  if (!version) throw new Error(`${where}: image "${image}" has no tag`)
  if (version.startsWith('sha256:')) return
  if (/latest|^(stable|main|master|edge|nightly)$/.test(version)) throw new Error(`${where}: image "${image}" is not pinned (tag "${version}")`)
  if (!/^v?\d+\.\d+\.\d+([.-][A-Za-z0-9.-]+)?$/.test(version)) throw new Error(`${where}: image "${image}" is not pinned to an exact version (major.minor.patch)`)
}

function readYaml (path) {
  return YAML.parse(readFileSync(path, 'utf8'), { merge: true })
}

/** Every panel of a dashboard, rows' nested panels included. */
const panelsOf = (dashboard) => (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])])

function main () {
  const { file, projectDir } = parseArgs(process.argv.slice(2))
  const inProject = (p) => isAbsolute(p) ? p : join(projectDir, p)
  const shown = (p) => relative(process.cwd(), p) || p
  console.log(`check-compose: ${shown(file)} (project directory ${shown(projectDir)})`)

  let raw
  check('the compose file parses as YAML (merge keys resolved, no duplicate keys)', () => {
    raw = YAML.parse(readFileSync(file, 'utf8'), { merge: true })
    if (!raw || typeof raw !== 'object') throw new Error('not a mapping')
  })
  if (!raw) return finish()

  const interpolationProblems = []
  const compose = interpolateTree(raw, '', interpolationProblems)
  // eslint-disable-next-line no-template-curly-in-string -- the check's name quotes compose's syntax
  check('every ${VARIABLE} has a default', () => {
    if (interpolationProblems.length) throw new Error(interpolationProblems.join('; '))
  })

  check(`valid against the compose-spec schema (${relative(ROOT, SCHEMA)})`, () => {
    const schema = JSON.parse(readFileSync(SCHEMA, 'utf8'))
    // The schema names its meta-schema by an https URL; ajv registers draft-07 under http, so add that alias.
    const metaSchema = { ...require('ajv/dist/refs/json-schema-draft-07.json'), $id: schema.$schema }
    const ajv = new Ajv({ allErrors: true, strict: false })
    ajv.addMetaSchema(metaSchema)
    const validate = ajv.compile(schema)
    if (!validate(compose)) {
      const seen = new Set()
      const lines = validate.errors
        .map((e) => `${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` ("${e.params.additionalProperty}")` : ''}${e.params?.allowedValues ? ` (${e.params.allowedValues.join(', ')})` : ''}`)
        .filter((line) => !seen.has(line) && seen.add(line))
      throw new Error(lines.slice(0, 15).join('; '))
    }
  })

  const services = compose.services ?? {}
  const declaredVolumes = new Set(Object.keys(compose.volumes ?? {}))

  check('every mounted file, config file, env_file and build context exists; named volumes are declared', () => {
    const problems = []
    for (const [name, service] of Object.entries(services)) {
      for (const mount of mountsOf(service)) {
        if (mount.source !== undefined && !existsSync(inProject(mount.source))) problems.push(`${name} mounts ${mount.source}, which does not exist`)
        if (mount.volume !== undefined && !declaredVolumes.has(mount.volume)) problems.push(`${name} mounts volume "${mount.volume}", not declared under volumes:`)
        if (mount.anonymous) problems.push(`${name} has an anonymous volume at ${mount.target}; name it`)
      }
      for (const envFile of [service.env_file ?? []].flat()) {
        const p = typeof envFile === 'string' ? envFile : envFile.path
        if (!existsSync(inProject(p))) problems.push(`${name}: env_file ${p} does not exist`)
      }
      if (service.build) {
        const context = inProject(typeof service.build === 'string' ? service.build : service.build.context ?? '.')
        const dockerfile = join(context, service.build.dockerfile ?? 'Dockerfile')
        if (!existsSync(dockerfile)) problems.push(`${name}: ${shown(dockerfile)} does not exist`)
      }
    }
    for (const [name, config] of Object.entries({ ...compose.configs, ...compose.secrets })) {
      if (config.file && !existsSync(inProject(config.file))) problems.push(`config/secret ${name}: ${config.file} does not exist`)
    }
    if (problems.length) throw new Error(problems.join('; '))
  })

  check('every image is pinned to an exact version (compose services and the Dockerfile\'s base images)', () => {
    const problems = []
    for (const [name, service] of Object.entries(services)) {
      if (!service.image) { problems.push(`${name} has no image: (a built service needs a versioned image name)`); continue }
      try { checkImagePinned(`service ${name}`, service.image) } catch (err) { problems.push(err.message) }
    }
    for (const [name, service] of Object.entries(services)) {
      if (!service.build) continue
      const context = inProject(typeof service.build === 'string' ? service.build : service.build.context ?? '.')
      const dockerfile = join(context, service.build.dockerfile ?? 'Dockerfile')
      if (!existsSync(dockerfile)) continue
      const text = readFileSync(dockerfile, 'utf8')
      const args = Object.fromEntries([...text.matchAll(/^ARG\s+(\w+)=(\S+)/gm)].map((m) => [m[1], m[2]]))
      const stages = new Set([...text.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1].toLowerCase()))
      for (const [, ref] of text.matchAll(/^FROM\s+(?:--platform=\S+\s+)?(\S+)/gim)) {
        const image = ref.replace(/^\$\{?(\w+)\}?$/, (_, arg) => args[arg] ?? ref)
        if (stages.has(image.toLowerCase())) continue
        try { checkImagePinned(`${shown(dockerfile)} (for ${name})`, image) } catch (err) { problems.push(err.message) }
      }
    }
    if (problems.length) throw new Error([...new Set(problems)].join('; '))
  })

  check('every published port is bound to 127.0.0.1; no host networking', () => {
    const problems = []
    for (const [name, service] of Object.entries(services)) {
      if (service.network_mode === 'host') problems.push(`${name} uses network_mode: host`)
      for (const port of service.ports ?? []) {
        if (typeof port === 'object') {
          if (port.host_ip !== '127.0.0.1') problems.push(`${name} publishes ${port.target} on host_ip ${port.host_ip ?? '(all interfaces)'}`)
        } else if (!/^127\.0\.0\.1:\d+(-\d+)?:\d+(-\d+)?(\/(tcp|udp))?$/.test(String(port))) {
          problems.push(`${name} publishes "${port}" (write 127.0.0.1:HOST:CONTAINER)`)
        }
      }
    }
    if (problems.length) throw new Error(problems.join('; '))
  })

  check('the gateway and stubs get only variables listed in .env.example, listen on 0.0.0.0, and need JWT_SECRET/STUB_CREDENTIAL with no fallback', () => {
    const envExample = inProject('.env.example')
    const known = new Set([...readFileSync(envExample, 'utf8').matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]))
    const problems = []
    for (const name of NODE_SERVICES) {
      if (!services[name]) { problems.push(`service ${name} is missing`); continue }
      const env = envOf(services[name])
      for (const key of Object.keys(env)) if (!known.has(key)) problems.push(`${name}: ${key} is not in .env.example (the code does not read it)`)
      // The gateway binds HOST; the stubs bind STUB_HOST (loopback unless set, docs/SECURITY.md).
      const bind = name === 'gateway' ? 'HOST' : 'STUB_HOST'
      if (env[bind] !== '0.0.0.0') problems.push(`${name}: ${bind} must be 0.0.0.0 inside the container (is ${env[bind] ?? 'unset'})`)
      for (const secret of name === 'auth' || name === 'gateway' ? ['JWT_SECRET', 'STUB_CREDENTIAL'] : ['STUB_CREDENTIAL']) {
        if (env[secret] !== requiredPlaceholder(secret)) problems.push(`${name}: ${secret} must come from \${${secret}:?…} with no fallback (is ${env[secret] ?? 'unset'})`)
      }
      if (name === 'gateway' && env.TRUST_PROXY !== undefined) problems.push('gateway: TRUST_PROXY is set but no proxy is in front of it')
    }
    if (problems.length) throw new Error(problems.join('; '))
  })

  check('every depends_on service_healthy target has a healthcheck', () => {
    const problems = []
    for (const [name, service] of Object.entries(services)) {
      const deps = Array.isArray(service.depends_on) ? {} : service.depends_on ?? {}
      for (const [dep, spec] of Object.entries(deps)) {
        if (!services[dep]) problems.push(`${name} depends on unknown service ${dep}`)
        else if (spec.condition === 'service_healthy' && !services[dep].healthcheck) problems.push(`${name} waits for ${dep} to be healthy, which has no healthcheck`)
      }
      if (service.network_mode?.startsWith('service:') && !services[service.network_mode.slice(8)]) problems.push(`${name}: ${service.network_mode} names no service`)
    }
    if (problems.length) throw new Error(problems.join('; '))
  })

  check('redis persists (appendonly yes, data in a named volume)', () => {
    const redis = services.redis
    if (!redis) throw new Error('no redis service')
    const command = [redis.command ?? []].flat().join(' ')
    if (!/--appendonly\s+yes/.test(command)) throw new Error(`redis command has no --appendonly yes: ${command}`)
    if (!mountsOf(redis).some((m) => m.volume && m.target === '/data')) throw new Error('redis /data is not a named volume')
  })

  check('prometheus: remote-write receiver on, config from prometheus/, every scrape target a service', () => {
    const prometheus = services.prometheus
    if (!prometheus) throw new Error('no prometheus service')
    const command = [prometheus.command ?? []].flat()
    if (!command.includes('--web.enable-remote-write-receiver')) throw new Error('command lacks --web.enable-remote-write-receiver')
    const configFlag = command.find((c) => c.startsWith('--config.file='))
    const mount = mountsOf(prometheus).find((m) => m.source && m.target === configFlag?.split('=')[1])
    if (!mount) throw new Error(`${configFlag ?? '--config.file'} is not a bind mount from the repository`)
    const config = readYaml(inProject(mount.source))
    const problems = []
    for (const job of config.scrape_configs ?? []) {
      for (const target of (job.static_configs ?? []).flatMap((c) => c.targets)) {
        const host = target.split(':')[0]
        if (host !== 'localhost' && !services[host]) problems.push(`job ${job.job_name} scrapes ${target}: no such service`)
      }
      const credentials = job.authorization?.credentials_file
      if (credentials) {
        const mounted = (prometheus.configs ?? []).some((c) => (typeof c === 'string' ? `/${c}` : c.target ?? `/${c.source}`) === credentials) ||
          mountsOf(prometheus).some((m) => m.target === credentials)
        if (!mounted) problems.push(`job ${job.job_name} reads ${credentials}, which nothing mounts`)
      }
    }
    const tokenConfig = compose.configs?.['metrics-token']?.content
    if (tokenConfig !== undefined && tokenConfig !== envOf(services.gateway ?? {}).METRICS_TOKEN) problems.push('the metrics-token config differs from the gateway\'s METRICS_TOKEN')
    if (problems.length) throw new Error(problems.join('; '))
  })

  check('promtool check config prometheus.yml (when promtool is on PATH; mounted files mapped to temp copies)', () => {
    const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8', timeout: 15_000 })
    if (probe.status !== 0) {
      console.log('     skipped: promtool is not on PATH (Debian: apt-get install prometheus)')
      return
    }
    const prometheus = services.prometheus
    const command = [prometheus?.command ?? []].flat()
    const target = command.find((c) => c.startsWith('--config.file='))?.split('=')[1]
    const mount = prometheus && mountsOf(prometheus).find((m) => m.source && m.target === target)
    if (!mount) throw new Error('no prometheus config mount to check')
    const dir = mkdtempSync(join(tmpdir(), 'check-compose-'))
    try {
      let text = readFileSync(inProject(mount.source), 'utf8')
      // Files Prometheus reads inside its container (the metrics token from `configs:`) exist only there.
      for (const c of prometheus.configs ?? []) {
        const source = typeof c === 'string' ? c : c.source
        const path = typeof c === 'string' ? `/${c}` : c.target ?? `/${c.source}`
        const local = join(dir, source)
        writeFileSync(local, compose.configs?.[source]?.content ?? readFileSync(inProject(compose.configs?.[source]?.file ?? ''), 'utf8'))
        text = text.replaceAll(path, local)
      }
      writeFileSync(join(dir, 'prometheus.yml'), text)
      const run = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8', timeout: 30_000 })
      if (run.status !== 0) throw new Error(`promtool: ${(run.stderr || run.stdout).trim()}`)
      console.log(`     ${probe.stdout.split('\n')[0].trim()}: valid`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  check('alloy ships the file the gateway writes (AUDIT_LOG_PATH, one shared volume) to the loki service', () => {
    const alloy = services.alloy
    const gateway = services.gateway
    if (!alloy || !gateway || !services.loki) throw new Error('alloy, gateway and loki services are all needed')
    const configMount = mountsOf(alloy).find((m) => m.source && m.target.endsWith('.alloy'))
    if (!configMount) throw new Error('alloy mounts no .alloy config from the repository')
    const text = readFileSync(inProject(configMount.source), 'utf8')
    const path = /"__path__"\s*=\s*"([^"]+)"/.exec(text)?.[1]
    const auditPath = envOf(gateway).AUDIT_LOG_PATH
    if (!auditPath) throw new Error('the gateway has no AUDIT_LOG_PATH')
    if (path !== auditPath) throw new Error(`alloy reads ${path}, the gateway writes ${auditPath}`)
    const gatewayVolume = mountsOf(gateway).find((m) => m.volume && auditPath.startsWith(`${m.target}/`))
    const alloyVolume = mountsOf(alloy).find((m) => m.volume && path.startsWith(`${m.target}/`))
    if (!gatewayVolume || !alloyVolume || gatewayVolume.volume !== alloyVolume.volume || gatewayVolume.target !== alloyVolume.target) {
      throw new Error('the gateway and alloy do not mount one named volume at the audit log\'s directory')
    }
    const lokiUrl = /url\s*=\s*"(http[^"]+)"/.exec(text)?.[1]
    if (!lokiUrl || !services[new URL(lokiUrl).hostname]) throw new Error(`alloy pushes to ${lokiUrl}, not a compose service`)
  })

  check('k6 runs a load-tests/tc-*.js chosen by TC, under a profile, remote-writing to prometheus with p(95) and p(99)', () => {
    const k6 = services.k6
    if (!k6) throw new Error('no k6 service')
    if (!k6.profiles?.length) throw new Error('k6 is not under a profile (it would run on every `up`)')
    const rawCommand = [raw.services.k6.command ?? []].flat().join(' ')
    if (!/load-tests\/\$\{TC:-tc-[a-z0-9-]+\}\.js/.test(rawCommand)) throw new Error(`command does not pick load-tests/\${TC:-tc-…}.js: ${rawCommand}`)
    const script = /load-tests\/(tc-[a-z0-9-]+\.js)/.exec([k6.command].flat().join(' '))?.[1]
    if (!script || !existsSync(inProject(join('load-tests', script)))) throw new Error(`the default TC ${script} does not exist in load-tests/`)
    if (![k6.command].flat().includes('experimental-prometheus-rw')) throw new Error('no -o experimental-prometheus-rw')
    const env = envOf(k6)
    const stats = env.K6_PROMETHEUS_RW_TREND_STATS ?? ''
    for (const stat of ['p(95)', 'p(99)']) if (!stats.split(',').includes(stat)) throw new Error(`K6_PROMETHEUS_RW_TREND_STATS lacks ${stat}`)
    const rw = env.K6_PROMETHEUS_RW_SERVER_URL
    if (!rw || new URL(rw).hostname !== 'prometheus' || new URL(rw).pathname !== '/api/v1/write') throw new Error(`K6_PROMETHEUS_RW_SERVER_URL is ${rw}`)
  })

  checkGrafana(compose, services, inProject, shown)

  check('docker compose config -q (when docker compose is available)', () => {
    const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8', timeout: 15_000 })
    if (probe.status !== 0) {
      console.log(`     skipped: \`docker compose\` is not available here (${(probe.error?.message ?? probe.stderr ?? '').trim().split('\n')[0]})`)
      return
    }
    const run = spawnSync('docker', ['compose', '-f', file, '--project-directory', projectDir, 'config', '-q'], { encoding: 'utf8', timeout: 60_000 })
    if (run.status !== 0) throw new Error(`docker compose config -q exited ${run.status ?? run.signal}: ${(run.stderr || run.stdout).trim()}`)
  })

  return finish()
}

function checkGrafana (compose, services, inProject, shown) {
  const grafana = services.grafana
  const datasources = []
  let dashboardsDir
  check('grafana: provisioning mounted, every provisioning file has apiVersion: 1, datasources have fixed uids', () => {
    if (!grafana) throw new Error('no grafana service')
    const provisioning = mountsOf(grafana).find((m) => m.source && m.target === '/etc/grafana/provisioning')
    if (!provisioning) throw new Error('grafana does not mount the provisioning directory at /etc/grafana/provisioning')
    const dir = inProject(provisioning.source)
    const problems = []
    for (const kind of ['datasources', 'dashboards']) {
      const kindDir = join(dir, kind)
      const files = existsSync(kindDir) ? readdirSync(kindDir).filter((f) => /\.ya?ml$/.test(f)) : []
      if (files.length === 0) problems.push(`no ${kind} provisioning file in ${shown(kindDir)}`)
      for (const f of files) {
        const doc = readYaml(join(kindDir, f))
        if (doc?.apiVersion !== 1) problems.push(`${kind}/${f} lacks apiVersion: 1`)
        if (kind === 'datasources') {
          for (const ds of doc.datasources ?? []) {
            if (!ds.uid) problems.push(`datasource ${ds.name} has no uid`)
            const host = ds.url && new URL(ds.url).hostname
            if (host && !services[host]) problems.push(`datasource ${ds.name} points at ${ds.url}: no such service`)
            datasources.push(ds)
          }
        } else {
          for (const provider of doc.providers ?? []) {
            const mount = mountsOf(grafana).find((m) => m.source && m.target === provider.options?.path)
            if (!mount) problems.push(`dashboard provider ${provider.name} reads ${provider.options?.path}, which grafana does not mount`)
            else dashboardsDir = inProject(mount.source)
          }
        }
      }
    }
    for (const uid of ['prometheus', 'loki']) if (!datasources.some((ds) => ds.uid === uid)) problems.push(`no datasource with uid ${uid}`)
    const home = envOf(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH
    const homeMount = home && mountsOf(grafana).find((m) => m.source && home.startsWith(`${m.target}/`))
    if (!homeMount || !existsSync(join(inProject(homeMount.source), home.slice(homeMount.target.length)))) problems.push(`home dashboard ${home ?? '(GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH unset)'} is not a mounted file`)
    if (problems.length) throw new Error(problems.join('; '))
  })
  if (!dashboardsDir) return

  const expected = GRAFANA_SCHEMA_VERSION[imageVersion(grafana.image ?? '')]
  check(`dashboards: valid JSON, schemaVersion ${expected ?? '?'} (what ${grafana.image} writes, ≥ ${MIN_SCHEMA_VERSION}), unique uids and panel ids, titled panels, provisioned datasource uids`, () => {
    if (expected === undefined) throw new Error(`${grafana.image}: add the schemaVersion it writes to GRAFANA_SCHEMA_VERSION in scripts/check-compose.mjs`)
    const files = readdirSync(dashboardsDir).filter((f) => f.endsWith('.json'))
    if (files.length === 0) throw new Error(`no dashboards in ${shown(dashboardsDir)}`)
    const problems = []
    const uids = new Map()
    const known = new Map(datasources.map((ds) => [ds.uid, ds.type]))
    for (const f of files) {
      let dashboard
      try {
        dashboard = JSON.parse(readFileSync(join(dashboardsDir, f), 'utf8'))
      } catch (err) {
        problems.push(`${f}: not JSON (${err.message})`)
        continue
      }
      if (!Number.isInteger(dashboard.schemaVersion) || dashboard.schemaVersion < MIN_SCHEMA_VERSION || dashboard.schemaVersion !== expected) {
        problems.push(`${f}: schemaVersion ${dashboard.schemaVersion}, expected ${expected}`)
      }
      if (!dashboard.uid) problems.push(`${f}: no uid`)
      else if (uids.has(dashboard.uid)) problems.push(`${f}: uid ${dashboard.uid} also used by ${uids.get(dashboard.uid)}`)
      else uids.set(dashboard.uid, f)
      const ids = new Set()
      const datasourceRefs = [...(dashboard.templating?.list ?? []).map((v) => [`variable ${v.name}`, v.datasource])]
      for (const panel of panelsOf(dashboard)) {
        if (!Number.isInteger(panel.id)) problems.push(`${f}: panel "${panel.title}" has no integer id`)
        else if (ids.has(panel.id)) problems.push(`${f}: panel id ${panel.id} is used twice`)
        ids.add(panel.id)
        if (!panel.title?.trim()) problems.push(`${f}: panel ${panel.id} has no title`)
        if (panel.type === 'row') continue
        if (!panel.targets?.length) problems.push(`${f}: panel "${panel.title}" has no query`)
        datasourceRefs.push([`panel "${panel.title}"`, panel.datasource], ...(panel.targets ?? []).map((t) => [`panel "${panel.title}" ${t.refId}`, t.datasource ?? panel.datasource]))
      }
      for (const [where, ref] of datasourceRefs) {
        if (!ref || typeof ref !== 'object' || !ref.uid) problems.push(`${f}: ${where} does not name its datasource by uid`)
        else if (known.get(ref.uid) !== ref.type) problems.push(`${f}: ${where} uses datasource ${ref.type}/${ref.uid}, not a provisioned one (${[...known].map(([u, t]) => `${t}/${u}`).join(', ')})`)
      }
    }
    if (problems.length) throw new Error(problems.join('; '))
  })
}

function finish () {
  if (failures.length) {
    console.error(`\ncheck-compose: ${failures.length} check(s) failed:\n${failures.map((f) => `  - ${f}`).join('\n')}`)
    process.exit(1)
  }
  console.log('\ncheck-compose: all checks passed')
}

try {
  main()
} catch (err) {
  console.error(`check-compose: ${err.message}`)
  process.exit(1)
}
