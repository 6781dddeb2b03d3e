"""A real Celery worker against a broker: the flows Celery users rely on.

Usage: /usr/bin/python3 celery_flow.py BROKER_URL
Starts a worker (solo pool, prefetch 1, kombu's py-amqp transport) as a child process, runs the
scenarios as a Celery client, stops the worker, prints one line per check and exits 0 only if
every check passed.
"""
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER_URL = sys.argv[1]
os.environ['BROKER_URL'] = BROKER_URL
os.environ['RUN_ID'] = 'celery-' + uuid.uuid4().hex[:8]
os.environ['WORK_DIR'] = tempfile.mkdtemp(prefix='warren-celery-')
sys.path.insert(0, HERE)

from warren_tasks import (  # noqa: E402
    DEFAULT_QUEUE, PRIORITY_QUEUE, WORK_DIR, add, app, blocker, flaky, record, survive_crash, wait_for_mark, when, mark,
)

TIMEOUT = 30
failures = []


def check(name, ok, detail=''):
    print(('PASS ' if ok else 'FAIL ') + name + (f': {detail}' if detail else ''), flush=True)
    if not ok:
        failures.append(name)


workers = []


def start_worker():
    logfile = open(os.path.join(WORK_DIR, f'worker-{len(workers) + 1}.log'), 'w')
    w = subprocess.Popen(
        [sys.executable, '-m', 'celery', '-A', 'warren_tasks', 'worker', '-P', 'solo', '-c', '1',
         '--without-gossip', '--without-mingle', '--without-heartbeat', '-Q', f'{DEFAULT_QUEUE},{PRIORITY_QUEUE}',
         '-n', f'{os.environ["RUN_ID"]}-{len(workers) + 1}@%h', '--loglevel=INFO'],
        cwd=HERE, stdout=logfile, stderr=subprocess.STDOUT,
    )
    workers.append((w, logfile))
    return w


def order_log():
    path = os.path.join(WORK_DIR, 'order.log')
    with open(path) as f:
        return [line.strip() for line in f]


def scenario(name, fn):
    try:
        fn()
    except Exception as e:  # a scenario that throws fails, the others still run
        check(name, False, f'{type(e).__name__}: {e}')
        traceback.print_exc()


def basic():
    check('a task runs and its result comes back (rpc:// backend)', add.delay(2, 3).get(timeout=TIMEOUT) == 5)


def priorities():
    # the worker holds one unacked (acks_late) task at a time; while the blocker runs, queue
    # low- then high-priority tasks: the high ones must run first
    b = blocker.apply_async(('prio',), queue=PRIORITY_QUEUE, priority=0)
    wait_for_mark('prio.started')
    rs = [record.apply_async((f'low-{i}',), queue=PRIORITY_QUEUE, priority=1) for i in range(3)]
    rs += [record.apply_async((f'high-{i}',), queue=PRIORITY_QUEUE, priority=9) for i in range(3)]
    mark('prio.released')
    b.get(timeout=TIMEOUT)
    for r in rs:
        r.get(timeout=TIMEOUT)
    order = order_log()
    expected = ['blocker:prio', 'high-0', 'high-1', 'high-2', 'low-0', 'low-1', 'low-2']
    check('x-max-priority queue: higher-priority tasks run first', order == expected, f'order {order}')


def countdown():
    # the worker holds the countdown task and raises its prefetch to take the next one. The
    # countdown is long because this worker (kombu's event loop, against RabbitMQ as against
    # Warren) sometimes sends the ack of a finished acks_late task only ~10 s later, with nothing
    # on the wire in between; with prefetch 1 the countdown task then waits behind that ack.
    # What is checked holds either way: the later task does not wait for the countdown.
    held = when.apply_async(countdown=15)
    eta = time.time() + 15
    later = when.delay()
    t_later = later.get(timeout=TIMEOUT)
    t_held = held.get(timeout=TIMEOUT)
    check('a task sent after a countdown task runs before the countdown is due (the worker raised its prefetch)', t_later < eta - 0.5, f'ran at {t_later}, countdown due {eta}')
    check('a countdown task does not run early', t_held >= eta - 0.5, f'ran at {t_held}, due {eta}')


def eta():
    due = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1.5)
    t = when.apply_async(eta=due).get(timeout=TIMEOUT)
    check('an ETA task runs at its ETA, not before', t >= due.timestamp() - 0.5, f'ran at {t}, due {due.timestamp()}')


def retry():
    r = flaky.delay(2)
    check('a task that retries (with countdown) twice completes', r.get(timeout=TIMEOUT) == 2)


def acks_late():
    r = survive_crash.delay('crash')
    wait_for_mark('crash.started')
    w, _ = workers[-1]
    w.send_signal(signal.SIGKILL)
    w.wait()
    start_worker()
    check('acks_late: a task whose worker died is redelivered to the next worker', r.get(timeout=TIMEOUT) == {'redelivered': True})


try:
    start_worker()
    scenario('basic', basic)
    scenario('priorities', priorities)
    scenario('countdown', countdown)
    scenario('eta', eta)
    scenario('retry', retry)
    scenario('acks_late', acks_late)
finally:
    for w, logfile in workers:
        if w.poll() is None:
            w.terminate()
            try:
                w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        logfile.close()
    # leave nothing behind on the broker (this run's queues and exchanges are durable)
    try:
        with app.connection_for_write() as conn:
            ch = conn.default_channel
            for name in (DEFAULT_QUEUE, PRIORITY_QUEUE):
                ch.queue_delete(name)
                ch.exchange_delete(name)
    except Exception as e:
        print(f'cleanup failed: {e}', flush=True)
    if failures:
        for i in range(len(workers)):
            with open(os.path.join(WORK_DIR, f'worker-{i + 1}.log')) as f:
                print(f'--- worker {i + 1} log ---\n' + f.read(), flush=True)
    print(json.dumps({'run': os.environ['RUN_ID'], 'failed': failures}), flush=True)

sys.exit(1 if failures else 0)
