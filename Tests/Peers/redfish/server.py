#!/usr/bin/env python3
"""A Redfish service for emit's tests: serves a mockup tree (short form: <root>/index.json is
/redfish/v1, <root>/<path>/index.json is /redfish/v1/<path>) on 127.0.0.1.

PATCH merges a JSON object into a resource in memory (tests move counters and power that way).
--user NAME:PASSWORD demands authentication (401 otherwise): HTTP Basic, or a session's
X-Auth-Token from POST /redfish/v1/SessionService/Sessions (DELETE its Location to log out;
GET the collection to see the live ones). --cert/--key serve HTTPS. For tests of how
emit reads: GET /_stats says how often each resource was read and the most GETs in flight at
once; POST /_stats {"delay": SECONDS} starts both afresh and answers each GET from then on that
much later, as a slow BMC does.
Standard library only."""
import argparse, base64, json, os, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def load(root):
    resources = {}
    for folder, _, files in os.walk(root):
        if 'index.json' not in files:
            continue
        rel = os.path.relpath(folder, root).replace(os.sep, '/')
        path = '/redfish/v1' if rel == '.' else '/redfish/v1/' + rel
        with open(os.path.join(folder, 'index.json'), encoding='utf-8') as f:
            doc = json.load(f)
        doc.pop('@Redfish.Copyright', None)
        doc.setdefault('@odata.id', path)
        resources[path] = doc
    return resources

SESSIONS = '/redfish/v1/SessionService/Sessions'

def merge(target, patch):
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('root')
    parser.add_argument('port', type=int)
    parser.add_argument('--user')
    parser.add_argument('--cert')
    parser.add_argument('--key')
    args = parser.parse_args()
    resources = load(args.root)
    lock = threading.Lock()
    expected = 'Basic ' + base64.b64encode(args.user.encode()).decode() if args.user else None
    sessions = {}  # token -> session id
    counter = [0]
    stats = {'gets': {}, 'in_flight': 0, 'most_at_once': 0, 'delay': 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        # Headers and body leave in one write: two small writes meet Nagle and delayed ACKs (40 ms).
        wbufsize = 1 << 16

        def log_message(self, *a):
            pass

        def reply(self, status, body=None):
            data = json.dumps(body).encode() if body is not None else b''
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.send_header('OData-Version', '4.0')
            self.end_headers()
            self.wfile.write(data)

        def authorized(self):
            if not expected or self.headers.get('Authorization') == expected:
                return True
            with lock:
                if self.headers.get('X-Auth-Token') in sessions:
                    return True
            self.reply(401, {'error': {'code': 'Base.1.0.NoValidSession', 'message': 'authentication required'}})
            return False

        def resource(self):
            if not self.authorized():
                return None
            path = self.path.split('?')[0].rstrip('/') or '/'
            if path == SESSIONS:
                with lock:
                    members = [{'@odata.id': f'{SESSIONS}/{n}'} for n in sessions.values()]
                return path, {'@odata.id': SESSIONS, 'Name': 'Sessions', 'Members': members, 'Members@odata.count': len(members)}
            with lock:
                doc = resources.get(path)
            if doc is None:
                self.reply(404, {'error': {'code': 'Base.1.0.ResourceMissingAtURI', 'message': path}})
            return path, doc

        def do_GET(self):
            if self.path == '/_stats':
                with lock:
                    self.reply(200, {'gets': stats['gets'], 'most_at_once': stats['most_at_once']})
                return
            with lock:
                path = self.path.split('?')[0].rstrip('/') or '/'
                stats['gets'][path] = stats['gets'].get(path, 0) + 1
                stats['in_flight'] += 1
                stats['most_at_once'] = max(stats['most_at_once'], stats['in_flight'])
            try:
                if stats['delay']:
                    time.sleep(stats['delay'])
                found = self.resource()
                if found and found[1] is not None:
                    with lock:
                        body = json.loads(json.dumps(found[1]))
                    self.reply(200, body)
            finally:
                with lock:
                    stats['in_flight'] -= 1

        def do_POST(self):
            if self.path == '/_stats':
                body = json.loads(self.rfile.read(int(self.headers.get('Content-Length', '0'))) or b'{}')
                with lock:
                    stats.update(gets={}, most_at_once=0, delay=float(body.get('delay', 0)))
                self.reply(204)
                return
            if self.path.rstrip('/') != SESSIONS:
                self.reply(405, {'error': {'code': 'Base.1.0.OperationNotAllowed', 'message': self.path}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get('Content-Length', '0'))) or b'{}')
                login = f"{body['UserName']}:{body['Password']}"
            except Exception:
                self.reply(400, {'error': {'code': 'Base.1.0.MalformedJSON', 'message': 'UserName and Password required'}})
                return
            if args.user and login != args.user:
                self.reply(401, {'error': {'code': 'Base.1.0.NoValidSession', 'message': 'wrong credentials'}})
                return
            with lock:
                counter[0] += 1
                token = f'token-{counter[0]}-' + base64.b16encode(os.urandom(8)).decode()
                sessions[token] = counter[0]
                number = counter[0]
            data = json.dumps({'@odata.id': f'{SESSIONS}/{number}', 'Id': str(number), 'UserName': body['UserName']}).encode()
            self.send_response(201)
            self.send_header('X-Auth-Token', token)
            self.send_header('Location', f'{SESSIONS}/{number}')
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_DELETE(self):
            if not self.authorized():
                return
            path = self.path.rstrip('/')
            with lock:
                for token, number in list(sessions.items()):
                    if path == f'{SESSIONS}/{number}':
                        del sessions[token]
                        break
                else:
                    number = None
            self.reply(204 if number is not None else 404)

        def do_PATCH(self):
            found = self.resource()
            if not found or found[1] is None:
                return
            try:
                patch = json.loads(self.rfile.read(int(self.headers.get('Content-Length', '0'))) or b'{}')
                assert isinstance(patch, dict)
            except Exception:
                self.reply(400, {'error': {'code': 'Base.1.0.MalformedJSON', 'message': 'body must be a JSON object'}})
                return
            with lock:
                merge(found[1], patch)
            self.reply(204)

    server = ThreadingHTTPServer(('127.0.0.1', args.port), Handler)
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print('serving', args.root, 'on', args.port, flush=True)
    server.serve_forever()

if __name__ == '__main__':
    main()
