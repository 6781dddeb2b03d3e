/** "host:port" or a URL → the URL etcd is reached at */
export function etcdUrl(endpoint: string): string {
  return /^[a-z]+:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
}
