// Black-box AMI client run by test/ami_clients_test.go with node.
// Usage: node asterisk_manager_client.js PORT USER SECRET CALLS
// Same checks as panoramisk_client.py with npm asterisk-manager 0.2.0
// (installed into test/ami/node_modules by scripts/install-deps.sh).
'use strict';
const AM = require('asterisk-manager');
const [port, user, secret, calls] = [Number(process.argv[2]), process.argv[3], process.argv[4], Number(process.argv[5])];
const out = { events: [] };
const ami = new AM(port, '127.0.0.1', user, secret, true);
let hangups = 0, queried = false;
const newchan = new Set();
const fail = (why) => { console.error(why); process.exit(1); };
setTimeout(() => fail('timeout: ' + JSON.stringify(out)), 120000).unref();

function action(a) {
  return new Promise((resolve) => ami.action(a, (err, res) => resolve({ err, res })));
}

ami.on('managerevent', (ev) => {
  const name = ev.event;
  if (name === 'Newchannel' || name === 'Newstate' || name === 'Hangup') {
    out.events.push({ event: name, channel: ev.channel, linkedid: ev.linkedid, calleridname: ev.calleridname });
  }
  if (name === 'Hangup') {
    hangups++;
    if (hangups >= 2 * (calls + 1)) finish();
  }
  if (name === 'Newchannel' && ev.calleridnum !== '666' && !ev.channel.endsWith(';2')) {
    newchan.add(ev.linkedid);
    if (newchan.size >= calls && !queried) { queried = true; setTimeout(coreShow, 500); }
  }
});

let items = 0;
ami.on('coreshowchannel', () => { items++; });
ami.on('coreshowchannelscomplete', (ev) => {
  out.coreshow_items = items;
  out.coreshow_listitems = Number(ev.listitems);
});

async function coreShow() {
  items = 0;
  await action({ action: 'CoreShowChannels', actionid: 'csc-1' });
}

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  setTimeout(() => { ami.disconnect(); console.log(JSON.stringify(out)); process.exit(0); }, 300);
}

(async () => {
  await new Promise((r) => setTimeout(r, 300));
  const p = await action({ action: 'Ping', actionid: 'p-1' });
  out.ping = p.res && p.res.ping;
  const c = await action({ action: 'Command', command: 'sniffer_version', actionid: 'c-1' });
  out.command_output = c.res && c.res.output;
  const b = await action({ action: 'Bogus', actionid: 'b-1' });
  out.bogus_err = !!b.err;
  out.bogus_response = b.res && b.res.response;
  const bad = new AM(port, '127.0.0.1', user, secret + 'x', false);
  bad.on('response', (r) => { out.wrong_secret = { response: r.response, message: r.message }; });
  bad.on('close', () => { out.wrong_secret_closed = true; });
})();
