#!/bin/bash
# README HA walkthrough from a clean clone, as a new user (RabbitMQ must be stopped: ports 5672-5674)
set -x
rm -rf /tmp/wtclone /tmp/warren-etcd; git clone -q /work/main /tmp/wtclone && cd /tmp/wtclone || exit 1
etcd --name e1 --data-dir /tmp/warren-etcd \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 > etcd.log 2>&1 &
echo $! > etcd.pid
npm ci > npmci.log 2>&1 && npm run build > build.log 2>&1 || { echo BUILD FAILED; exit 1; }
for i in 1 2 3; do
  node --single-threaded-gc --initial-old-space-size=128 dist/cli/main.js start --host 127.0.0.1 --port $((5671 + i)) --data-dir data/n$i \
    --cluster-etcd 127.0.0.1:2379 --cluster-port $((5678 + i)) --node-id n$i > n$i.log &
  echo $! > n$i.pid
done
sleep 8
node dist/cli/main.js cluster status --cluster-etcd 127.0.0.1:2379
node dist/cli/main.js cluster status --cluster-etcd 127.0.0.1:2379 --json > status1.json; cat status1.json
AMQP_URLS=amqp://guest:guest@127.0.0.1:5672,amqp://guest:guest@127.0.0.1:5673,amqp://guest:guest@127.0.0.1:5674 \
  node examples/cluster/cluster-client.mjs > client.log 2>&1 &
echo $! > client.pid
sleep 8
L=$(node -e "console.log(JSON.parse(require('fs').readFileSync('status1.json','utf8')).leader)")
echo "leader $L; killing"; date +%s.%N
kill -9 $(cat $L.pid)
sleep 15
node dist/cli/main.js cluster status --cluster-etcd 127.0.0.1:2379
echo "restart $L"
i=${L#n}
node --single-threaded-gc --initial-old-space-size=128 dist/cli/main.js start --host 127.0.0.1 --port $((5671 + i)) --data-dir data/n$i \
    --cluster-etcd 127.0.0.1:2379 --cluster-port $((5678 + i)) --node-id n$i >> n$i.log &
echo $! > n$i.pid
sleep 12
node dist/cli/main.js cluster status --cluster-etcd 127.0.0.1:2379
kill $(cat client.pid); sleep 1
tail -30 client.log
kill $(cat n1.pid n2.pid n3.pid) ; sleep 3; kill $(cat etcd.pid)
