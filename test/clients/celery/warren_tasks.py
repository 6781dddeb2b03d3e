"""Celery app and tasks for the Celery-against-Warren test (test/clients/celery.test.ts).

Configured from the environment: BROKER_URL, RUN_ID (prefixes every queue and exchange, so runs
never share them), WORK_DIR (where tasks leave marks the driver waits for).
"""
import os
import time

from celery import Celery
from kombu import Exchange, Queue

RUN_ID = os.environ['RUN_ID']
WORK_DIR = os.environ['WORK_DIR']

app = Celery('warren_tasks', broker=os.environ['BROKER_URL'], backend='rpc://')

DEFAULT_QUEUE = f'{RUN_ID}-default'
PRIORITY_QUEUE = f'{RUN_ID}-priority'

app.conf.update(
    task_default_queue=DEFAULT_QUEUE,
    task_default_exchange=DEFAULT_QUEUE,
    task_default_routing_key=DEFAULT_QUEUE,
    task_queues=[
        Queue(DEFAULT_QUEUE, Exchange(DEFAULT_QUEUE), routing_key=DEFAULT_QUEUE),
        Queue(PRIORITY_QUEUE, Exchange(PRIORITY_QUEUE), routing_key=PRIORITY_QUEUE, queue_arguments={'x-max-priority': 10}),
    ],
    # one task reserved at a time: any wait for a raised prefetch shows at once
    worker_prefetch_multiplier=1,
    result_expires=None,
    broker_connection_retry_on_startup=False,
    # the reply queues of the rpc:// backend
    result_exchange=f'{RUN_ID}-results',
)


def mark(name: str) -> None:
    with open(os.path.join(WORK_DIR, name), 'w'):
        pass


def wait_for_mark(name: str, timeout: float = 30.0) -> None:
    path = os.path.join(WORK_DIR, name)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f'no mark {name}')
        time.sleep(0.02)


def log(entry: str) -> None:
    with open(os.path.join(WORK_DIR, 'order.log'), 'a') as f:
        f.write(entry + '\n')


@app.task
def add(x, y):
    return x + y


@app.task
def when():
    """When the worker ran it (epoch seconds)."""
    return time.time()


@app.task(bind=True, max_retries=5)
def flaky(self, failures):
    """Fails `failures` times, retrying with a countdown each time; then returns how often it retried."""
    if self.request.retries < failures:
        raise self.retry(countdown=0.5)
    return self.request.retries


@app.task(acks_late=True)
def blocker(name):
    """Marks that it started, then waits until the driver marks `name` released."""
    log(f'blocker:{name}')
    mark(f'{name}.started')
    wait_for_mark(f'{name}.released')
    return name


@app.task(acks_late=True)
def record(name):
    log(name)
    return name


@app.task(bind=True, acks_late=True)
def survive_crash(self, name):
    """acks_late: the first delivery marks that it started and waits forever (the worker is killed
    meanwhile); the redelivery to the next worker completes and reports the redelivered flag."""
    if not self.request.delivery_info.get('redelivered'):
        mark(f'{name}.started')
        wait_for_mark(f'{name}.never', timeout=600)
    return {'redelivered': bool(self.request.delivery_info.get('redelivered'))}
