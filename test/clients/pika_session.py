"""A pika (Debian python3-pika) session: connect, qos, declare, confirm, publish, consume, ack,
close. Usage: /usr/bin/python3 pika_session.py AMQP_URL. Prints OK and exits 0 when it all worked."""
import sys

import pika

conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
print('product:', conn._impl.server_properties.get('product'))
ch = conn.channel()
ch.basic_qos(prefetch_count=10)
queue = ch.queue_declare('', exclusive=True).method.queue
ch.confirm_delivery()
ch.basic_publish('', queue, b'hello from pika', pika.BasicProperties(delivery_mode=2, priority=1), mandatory=True)
for method, properties, body in ch.consume(queue, inactivity_timeout=10):
    assert method is not None, 'no delivery'
    assert body == b'hello from pika', body
    ch.basic_ack(method.delivery_tag)
    break
ch.cancel()
conn.close()
print('OK')
