import { describe, expect, it } from 'vitest';
import { connect, isWarren, tuned } from './support/index.js';

// Clients key on connection.start's product and version: kombu (Celery) sends basic.qos
// global=true for a worker's shared prefetch only to "RabbitMQ" 3.3 or later. Warren presents
// itself as the RabbitMQ release it follows, and names itself elsewhere (docs/differences.md).

/** kombu's rule (kombu.transport.pyamqp: qos_semantics_matches_spec): RabbitMQ below 3.3 follows the spec. */
function kombuUsesGlobalQos(props: Record<string, unknown>): boolean {
  if (props.product !== 'RabbitMQ') return false;
  const [major = 0, minor = 0] = String(props.version).split('.').map(Number);
  return major > 3 || (major === 3 && minor >= 3);
}

describe('connection.start server-properties', () => {
  it('product RabbitMQ with a 3.x version at or above 3.3 (kombu then uses RabbitMQ qos semantics)', async () => {
    const conn = await connect();
    try {
      const props = tuned(conn).serverProperties;
      expect(props.product).toBe('RabbitMQ');
      expect(String(props.version)).toMatch(/^3\.\d+\.\d+$/);
      expect(kombuUsesGlobalQos(props)).toBe(true);
      expect(typeof props.platform).toBe('string');
      expect(typeof props.information).toBe('string');
    } finally {
      await conn.close();
    }
  });

  it.skipIf(!isWarren())('Warren names itself in platform, information and warren_version (Warren extension)', async () => {
    const conn = await connect();
    try {
      const props = tuned(conn).serverProperties;
      expect(props.platform).toMatch(/^Warren /);
      expect(props.information).toMatch(/^Warren /);
      expect(typeof props.warren_version).toBe('string');
    } finally {
      await conn.close();
    }
  });
});
