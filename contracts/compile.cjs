// Compiles contracts/src/*.sol with solc-js (standard JSON) into contracts/artifacts/<Name>.json
// = {abi, bytecode, sourceSha256, compiler}. sourceSha256 covers every source file, because any
// contract may import any other: sha256 over, for each file sorted by name, name NUL content NUL.
// Usage: node compile.cjs <path to the solc npm package>
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const solc = require(process.argv[2]);
const srcDir = path.join(__dirname, 'src');
const outDir = path.join(__dirname, 'artifacts');
const DEPLOYABLE = ['Controller', 'Minter', 'RoundsManager', 'BondingManager', 'TicketBroker', 'ServiceRegistry'];

const files = fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort();
const hash = crypto.createHash('sha256');
const sources = {};
for (const f of files) {
  const content = fs.readFileSync(path.join(srcDir, f));
  hash.update(f);
  hash.update(Buffer.from([0]));
  hash.update(content);
  hash.update(Buffer.from([0]));
  sources[f] = { content: content.toString('utf8') };
}
const sourceSha256 = hash.digest('hex');

const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Arbitrum One supports Cancun; anvil defaults to a later fork and runs it too.
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) {
  if (e.severity === 'error') process.stderr.write(e.formattedMessage + '\n');
}
if (errors.length > 0) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
for (const name of DEPLOYABLE) {
  const unit = output.contracts[`${name}.sol`];
  if (!unit || !unit[name]) {
    process.stderr.write(`contract ${name} missing from compiler output\n`);
    process.exit(1);
  }
  const artifact = {
    abi: unit[name].abi,
    bytecode: '0x' + unit[name].evm.bytecode.object,
    sourceSha256,
    compiler: solc.version(),
  };
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
}
