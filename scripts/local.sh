#!/usr/bin/env bash
# local.sh runs the detector Lambda on this machine, end to end, and shows
# what it does with the sample events (`make local`):
#
#   scripts/local.sh                          # every events/*.json, in order
#   EVENT=events/spoofed-xff.json scripts/local.sh
#   EVENT="events/a.json events/a.json" scripts/local.sh  # several, in order
#   RULES_FILE=my-rules.yaml scripts/local.sh # your rules instead of the defaults
#   FANIN=1 scripts/local.sh                  # the organization deployment: see below
#
# It builds the real bootstrap, starts dynalite (DynamoDB), goaws (SNS, with
# the topic and queues of scripts/goaws.yaml) and the Lambda Runtime
# Interface Emulator, all on 127.0.0.1, creates the state table, invokes the
# function with each event, and prints the function's summary line, the
# invocation's result and what the topic's subscribers received. Whatever it
# started it stops by PID on the way out, also after an error or Ctrl-C.
#
# With FANIN=1 it runs the organization deployment instead (docs/organization.md):
# kinesalite stands in for the CloudWatch Logs destination's stream, the
# function runs with QUALIFY_CLUSTERS=true, and cmd/fanin writes the
# events/src files as two accounts' prod and staging clusters to the stream
# and delivers it the way Lambda's event source mapping does (batches per
# shard, checkpoint after success, retry of failed records).
#
# Ports: ANONWATCH_DYNALITE_PORT (4567), ANONWATCH_GOAWS_PORT (4100),
# ANONWATCH_KINESALITE_PORT (4568, FANIN=1 only) and
# ANONWATCH_RIE_PORT (9000; the runtime API takes the next one). Linux only:
# the emulator is a Linux program. With Docker and the SAM CLI, see
# docs/local.md for `sam local invoke`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
run="$root/.run/local"
dyn_port="${ANONWATCH_DYNALITE_PORT:-4567}"
sns_port="${ANONWATCH_GOAWS_PORT:-4100}"
kin_port="${ANONWATCH_KINESALITE_PORT:-4568}"
fanin="${FANIN:-}"
rie_port="${ANONWATCH_RIE_PORT:-9000}"
api_port=$((rie_port + 1))

# The topic and queues scripts/goaws.yaml declares.
topic_name=anonwatch-findings
queues=(findings-envelope findings-raw findings-urgent)

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
	bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' off=$'\e[0m'
else
	bold='' dim='' red='' off=''
fi
step() { printf '%s▸%s %-9s %s\n' "$bold" "$off" "$1" "$2"; }
fail() {
	printf '%slocal.sh: %s%s\n' "$red" "$*" "$off" >&2
	exit 1
}

[[ "$(uname -s)" == Linux ]] || fail "the Lambda Runtime Interface Emulator runs on Linux only; see docs/local.md for sam local invoke"
command -v go >/dev/null || fail "go is not on PATH"
command -v node >/dev/null || fail "node is not on PATH (Node.js 20 runs dynalite)"

if [[ -n "${EVENT:-}" ]]; then
	read -r -a events <<<"$EVENT"
	for e in "${events[@]}"; do
		[[ -f "$e" ]] || fail "EVENT: $e: no such file"
	done
else
	events=(events/*.json)
fi
rules_file=""
if [[ -n "${RULES_FILE:-}" ]]; then
	[[ -f "$RULES_FILE" ]] || fail "RULES_FILE=$RULES_FILE: no such file"
	rules_file="$(cd "$(dirname "$RULES_FILE")" && pwd)/$(basename "$RULES_FILE")"
fi

# show is the Node.js program that talks to goaws and the emulator and
# prints what happened (Node is here anyway for dynalite, and has fetch):
#   topic SNS_URL NAME                                   print the topic's ARN
#   invoke RIE_URL SNS_URL RIE_LOG FINDINGS QUEUE... -- EVENT...
show="$(
	cat <<'EOF'
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const [cmd, ...args] = process.argv.slice(1);
const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code) => (s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : String(s));
const bold = paint('1'), dim = paint('2'), red = paint('31'), green = paint('32'), yellow = paint('33');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// goaws speaks the query protocol: form POST in, XML out.
async function goaws(url, params) {
  const res = await fetch(url + '/', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`goaws ${params.Action}: HTTP ${res.status}: ${body.trim()}`);
  return body;
}
const elements = (xml, tag) => [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]);
const leaf = (xml, tag) => unescapeXML(elements(xml, tag)[0] ?? "");
function unescapeXML(s) {
  const named = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, e) =>
    e[0] !== '#' ? named[e] : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)));
}

// drain returns every message now in a queue, then empties it. goaws
// delivers inside Publish, so once an invoke has returned, its deliveries
// are all there; a received message stays hidden until the purge.
async function drain(sns, account, queue) {
  const url = `${sns}/${account}/${queue}`;
  const out = [];
  for (;;) {
    const xml = await goaws(sns, { Action: 'ReceiveMessage', QueueUrl: url, MaxNumberOfMessages: '10', WaitTimeSeconds: '0' });
    const msgs = elements(xml, 'Message');
    if (msgs.length === 0) break;
    for (const m of msgs) out.push(leaf(m, 'Body'));
  }
  await goaws(sns, { Action: 'PurgeQueue', QueueUrl: url });
  return out;
}

// functionLines returns the function's JSON log lines for one request from
// the emulator's output, with the init lines logged during it (they carry
// no request ID).
function functionLines(log, requestId) {
  const lines = [];
  let inRequest = false;
  for (const line of log.split('\n')) {
    if (line.startsWith('START RequestId: ')) inRequest = line.startsWith(`START RequestId: ${requestId} `);
    if (!line.startsWith('{')) continue;
    let j;
    try {
      j = JSON.parse(line);
    } catch {
      continue;
    }
    if (!('level' in j)) continue; // the EMF metrics line
    if (j.requestId === requestId || (inRequest && !('requestId' in j))) lines.push(j);
  }
  return lines;
}

const hidden = new Set(['timestamp', 'level', 'message', 'requestId', 'log_group', 'log_stream', 'batch', 'skipped_by_reason']);
function describeLine(j) {
  const kv = Object.entries(j)
    .filter(([k, v]) => !hidden.has(k) && v !== '')
    .map(([k, v]) => {
      // A multi-line value (a CEL error's caret diagram) keeps the indent.
      let s = `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v).replace(/\n/g, '\n' + ' '.repeat(12))}`;
      const reasons = Object.entries(j.skipped_by_reason || {});
      if (k === 'skipped' && reasons.length) s += ` (${reasons.map(([r, n]) => `${r}=${n}`).join(' ')})`;
      return s;
    });
  const head = j.level === 'INFO' ? bold(j.message) : red(`${j.level} ${j.message}`);
  return wrap([head, ...kv], 12);
}
const plain = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
function wrap(words, indent) {
  const width = Math.max(60, Math.min(process.stdout.columns || 100, 120)) - indent;
  const lines = [];
  let cur = '';
  for (const w of words) {
    if (cur && plain(cur).length + 1 + plain(w).length > width) {
      lines.push(cur);
      cur = w;
    } else {
      cur = cur ? `${cur} ${w}` : w;
    }
  }
  if (cur) lines.push(cur);
  return lines.join('\n' + ' '.repeat(indent));
}
const label = (s) => `  ${s.padEnd(9)} `;
const plural = (n, s) => `${n} ${s}${n === 1 ? '' : 's'}`;

async function invoke(rie, sns, logFile, outFile, queues, events) {
  const account = (await topicArn(sns, 'anonwatch-findings')).split(':')[4];
  const [envelopeQ, rawQ, urgentQ] = queues;
  for (const q of queues) await drain(sns, account, q); // what an earlier run left
  fs.writeFileSync(outFile, '');
  let total = 0;
  let failed = 0;
  for (const [i, file] of events.entries()) {
    console.log(`\n${bold(`── ${i + 1}/${events.length} ${file} `)}${dim('─'.repeat(Math.max(4, 68 - file.length)))}`);
    const requestId = crypto.randomUUID();
    const began = performance.now();
    const res = await fetch(`${rie}/2015-03-31/functions/function/invocations`, {
      method: 'POST',
      headers: { 'X-Amzn-RequestId': requestId },
      body: fs.readFileSync(file),
    });
    const body = await res.text();
    const took = (performance.now() - began).toFixed(0);
    // The emulator writes an invocation's REPORT line after the function's
    // own lines, and a failed init's RTDONE line after the function's.
    const deadline = Date.now() + 10000;
    let log;
    for (;;) {
      log = fs.readFileSync(logFile, 'utf8');
      if (log.includes(`REPORT RequestId: ${requestId}`) || Date.now() > deadline) break;
      if (res.status !== 200 && log.includes('INIT RTDONE(status: error)')) break;
      await sleep(20);
    }

    let fnErr = null;
    try {
      fnErr = JSON.parse(body);
    } catch {}
    let result;
    if (res.status === 200 && body === 'null') {
      result = green('ok');
    } else if (res.status === 200 && fnErr && fnErr.errorType) {
      result = red(`error ${fnErr.errorType}: ${fnErr.errorMessage}`);
      failed++;
    } else if (res.status === 502) {
      result = red('init failed: the function did not start (its log line is above)');
      failed++;
    } else {
      result = red(`HTTP ${res.status} ${body}`);
      failed++;
    }
    const lines = functionLines(log, requestId);
    if (lines.length === 0) console.log(label('function') + dim('(no log line)'));
    for (const j of lines) console.log(label('function') + describeLine(j));
    console.log(label('result') + `${result} ${dim(`(HTTP ${res.status}, ${took} ms${i === 0 ? ', cold start included' : ''})`)}`);

    const notes = (await drain(sns, account, envelopeQ)).map((b) => JSON.parse(b));
    const raw = await drain(sns, account, rawQ);
    const urgent = (await drain(sns, account, urgentQ)).map((b) => JSON.parse(b));
    total += notes.length;
    if (notes.length === 0) {
      console.log(label('delivered') + dim('nothing'));
      continue;
    }
    console.log(label('delivered') + `${plural(notes.length, 'finding')} ${dim('(e-mail subject and summary, then the JSON that queues get)')}`);
    for (const n of notes) {
      const f = JSON.parse(n.Message);
      fs.appendFileSync(outFile, n.Message + '\n');
      const tone = ['high', 'critical'].includes(f.severity) ? red : f.severity === 'medium' ? yellow : (s) => s;
      console.log(`    ${tone(bold(n.Subject))}`);
      console.log(`      ${wrap(f.summary.split(' '), 6)}`);
      const brief = {};
      for (const k of ['finding_id', 'rule', 'severity', 'cluster_name', 'src_ip', 'forwarded_for', 'user', 'count', 'window']) {
        if (f[k] !== undefined) brief[k] = f[k];
      }
      const more = Object.keys(f).length - Object.keys(brief).length;
      console.log(dim(`      ${JSON.stringify(brief)} +${more} more fields`));
    }
    const urgentList = urgent.map((f) => `${f.rule} ${f.severity}`).join(', ');
    console.log(label('queues') + dim(`${envelopeQ} ${notes.length}, ${rawQ} ${raw.length}, ${urgentQ} ${urgent.length} (high and critical only)${urgentList ? ': ' + urgentList : ''}`));
  }
  let end = bold(`${plural(events.length, 'event')}, ${plural(total, 'finding')} delivered`);
  if (failed) end += red(`, ${plural(failed, 'invocation')} failed`);
  console.log(`\n${end}${dim(`. Findings in full: ${outFile}`)}`);
  console.log(dim(`The function's log (JSON, with the emulator's lines): ${logFile}`));
  if (failed) process.exitCode = 1;
}

async function topicArn(sns, name) {
  const arns = elements(await goaws(sns, { Action: 'ListTopics' }), 'TopicArn').map(unescapeXML);
  const arn = arns.find((a) => a.endsWith(':' + name));
  if (!arn) throw new Error(`goaws has no topic ${name} (topics: ${arns.join(', ') || 'none'}); see scripts/goaws.yaml`);
  return arn;
}

(async () => {
  if (cmd === 'topic') {
    console.log(await topicArn(args[0], args[1]));
  } else if (cmd === 'delivered') {
    const [sns, outFile, envelopeQ] = args;
    const account = (await topicArn(sns, 'anonwatch-findings')).split(':')[4];
    const notes = (await drain(sns, account, envelopeQ)).map((b) => JSON.parse(b));
    const rows = {};
    for (const n of notes) {
      const f = JSON.parse(n.Message);
      fs.appendFileSync(outFile, n.Message + '\n');
      const k = `${f.account || '-'} ${f.region || '-'} ${f.cluster_name}`;
      (rows[k] = rows[k] || []).push(`${f.severity} ${f.rule}${f.src_ip ? ' ' + f.src_ip : ''}`);
    }
    console.log(`\n${bold(plural(notes.length, 'finding'))} delivered, by account, region and cluster ${dim('(in full: ' + outFile + ')')}`);
    for (const k of Object.keys(rows).sort()) console.log(`  ${bold(k)}: ${rows[k].length}\n    ${rows[k].sort().join('\n    ')}`);
  } else if (cmd === 'invoke') {
    const sep = args.indexOf('--');
    const [rie, sns, logFile, outFile, ...queues] = args.slice(0, sep);
    await invoke(rie, sns, logFile, outFile, queues, args.slice(sep + 1));
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
})().catch((e) => {
  console.error(red(`local.sh: ${e.message}`));
  process.exit(1);
});
EOF
)"

# listening reports whether something accepts TCP connections on the port.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# running reports whether a scripts/<name>.sh server is already up (its PID
# file names a live process). Such a server is someone else's: we use it
# and leave it running.
running() {
	local pidfile="$root/.run/$1.pid"
	[[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

if listening "$rie_port" || listening "$api_port"; then
	fail "port $rie_port or $api_port is in use; set ANONWATCH_RIE_PORT to another port"
fi

started_dynalite=0 started_goaws=0 started_kinesalite=0 rie_pid=""
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n "$rie_pid" ]] && kill -0 "$rie_pid" 2>/dev/null; then
		# The emulator leads its own process group (setsid); the group
		# holds the function's process too.
		kill -TERM -- "-$rie_pid" 2>/dev/null || true
		for _ in {1..20}; do
			kill -0 "$rie_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$rie_pid" 2>/dev/null || true
	fi
	if ((started_goaws)); then scripts/goaws.sh stop || true; fi
	if ((started_kinesalite)); then scripts/kinesalite.sh stop || true; fi
	if ((started_dynalite)); then scripts/dynalite.sh stop || true; fi
	case $status in
	0) ;;
	130 | 143) printf '%sinterrupted: stopped everything local.sh started%s\n' "$red" "$off" >&2 ;;
	*) printf '%sfailed (exit %d): stopped everything local.sh started; logs are in %s%s\n' "$red" "$status" "${run#"$root"/}" "$off" >&2 ;;
	esac
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf '%sanonwatch, locally:%s the detector Lambda under the Lambda Runtime Interface\n' "$bold" "$off"
printf 'Emulator, with dynalite as DynamoDB and goaws as SNS, all on 127.0.0.1.\n\n'

scripts/tools.sh

mkdir -p "$run/function"
arch="$(go env GOHOSTARCH)"
printf '%s▸%s %-9s %s' "$bold" "$off" build "bootstrap (linux/$arch) and the anonwatch CLI … "
began=$SECONDS
# One go build for both: they share every compiled dependency.
GOOS=linux GOARCH="$arch" CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' \
	-o "$run/" ./functions/detector ./cmd/anonwatch ./cmd/fanin
mv "$run/detector" "$run/function/bootstrap"
printf '%sdone in %d s%s\n' "$dim" $((SECONDS - began)) "$off"

if running dynalite; then
	dyn_url="$(scripts/dynalite.sh start "$dyn_port")"
	table="anonwatch-local-$(date +%s)"
	step dynalite "$dyn_url (already running: left running; a new table keeps this run's state apart)"
else
	started_dynalite=1
	dyn_url="$(scripts/dynalite.sh start "$dyn_port")"
	table=anonwatch
	step dynalite "$dyn_url"
fi
if running goaws; then
	sns_url="$(scripts/goaws.sh start "$sns_port")"
	step goaws "$sns_url (already running: left running)"
else
	started_goaws=1
	sns_url="$(scripts/goaws.sh start "$sns_port")"
	step goaws "$sns_url"
fi

export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_DYNAMODB="$dyn_url" AWS_ENDPOINT_URL_SNS="$sns_url"

# dynalite has no TTL; the CLI says so as a warning, which is expected here.
if ! out="$("$run/anonwatch" table create "$table" 2>&1)"; then
	fail "anonwatch table create $table: $out"
fi
step table "$table ${dim}(dynalite has no TTL, so items never expire here)${off}"

rie_log="$run/rie.log"
fn_env=(
	"PATH=$PATH"
	AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED
	AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SNS
	AWS_LAMBDA_LOG_FORMAT=JSON
	AWS_LAMBDA_FUNCTION_NAME=anonwatch-detector
	"TABLE_NAME=$table"
	# Filled in below, once goaws has told us the topic's ARN.
)
# The emulator hands its whole environment to the function: start it with
# the function's environment only, so nothing from this shell leaks in.
topic_arn="$(node -e "$show" topic "$sns_url" "$topic_name")"
fn_env+=("TOPIC_ARN=$topic_arn")
if [[ -n "$rules_file" ]]; then fn_env+=("RULES_FILE=$rules_file"); fi
if [[ -n "$fanin" ]]; then fn_env+=(QUALIFY_CLUSTERS=true); fi
for i in "${!fn_env[@]}"; do
	# Bare names take this shell's value.
	if [[ "${fn_env[$i]}" != *=* ]]; then fn_env[i]="${fn_env[$i]}=${!fn_env[$i]}"; fi
done
step topic "$topic_arn → queues ${queues[*]}"

(cd "$run/function" && exec setsid env -i "${fn_env[@]}" "$root/.bin/aws-lambda-rie" \
	--runtime-interface-emulator-address "127.0.0.1:$rie_port" \
	--runtime-api-address "127.0.0.1:$api_port" ./bootstrap \
	</dev/null >"$rie_log" 2>&1) &
rie_pid=$!
for _ in {1..100}; do
	listening "$rie_port" && break
	kill -0 "$rie_pid" 2>/dev/null || break
	sleep 0.05
done
listening "$rie_port" || fail "the emulator did not start; its output:
$(cat "$rie_log")"
step emulator "http://127.0.0.1:$rie_port (PID $rie_pid; the function's log: ${rie_log#"$root"/})"
if [[ -n "$rules_file" ]]; then step rules "$rules_file"; fi

if [[ -z "$fanin" ]]; then
	node -e "$show" invoke "http://127.0.0.1:$rie_port" "$sns_url" "$rie_log" \
		"$run/findings.jsonl" "${queues[@]}" -- "${events[@]}"
	exit
fi

if running kinesalite; then
	kin_url="$(scripts/kinesalite.sh start "$kin_port")"
	step kinesalite "$kin_url (already running: left running)"
else
	started_kinesalite=1
	kin_url="$(scripts/kinesalite.sh start "$kin_port")"
	step kinesalite "$kin_url"
fi
stream="anonwatch-fanin-$(date +%s)"
"$run/fanin" -kinesis "$kin_url" -invoke "http://127.0.0.1:$rie_port/2015-03-31/functions/function/invocations" \
	-stream "$stream" events/src/*.jsonl
node -e "$show" delivered "$sns_url" "$run/findings.jsonl" "${queues[@]}"
