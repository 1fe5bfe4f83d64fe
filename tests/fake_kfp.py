"""A loopback HTTP server answering like the KFP v2beta1 REST API (the calls `ssd schedule` makes).

Not a mock of our code: `kfp.Client` talks to it over real HTTP. Every request
body is parsed strictly into the `kfp_server_api` model the real server's
OpenAPI spec names (unknown keys, wrong types and bad enum values are
errors), every uploaded file into KFP's `PipelineSpec` proto; a request that
fails this gets HTTP 400 and is recorded in `errors`, so tests can assert
there were none.
"""

import datetime
import email.parser
import email.policy
import http.server
import json
import re
import threading
from typing import Any, Dict, List, Optional
import urllib.parse

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import kfp_server_api
import yaml

API = '/apis/v2beta1'
# Filter operations as kfp.Client sends them (proto enum numbers) or by name.
_OPERATIONS = {1: 'EQUALS', 2: 'NOT_EQUALS', 3: 'GREATER_THAN', 5: 'GREATER_THAN_EQUALS',
               6: 'LESS_THAN', 7: 'LESS_THAN_EQUALS', 8: 'IN', 9: 'IS_SUBSTRING'}


class BadRequest(ValueError):
  pass


def _model_class(name: str):
  return getattr(kfp_server_api.models, name)


def parse_model(data: Any, type_name: str, where: str = 'body') -> Any:
  """Strictly converts wire JSON into a kfp_server_api model (or a primitive)."""
  if type_name.startswith('list['):
    if not isinstance(data, list):
      raise BadRequest(f'{where}: expected a list, got {data!r}')
    return [parse_model(v, type_name[5:-1], f'{where}[{i}]') for i, v in enumerate(data)]
  if type_name.startswith('dict('):
    if not isinstance(data, dict):
      raise BadRequest(f'{where}: expected an object, got {data!r}')
    value_type = type_name[5:-1].split(',', 1)[1].strip()
    return {k: parse_model(v, value_type, f'{where}.{k}') for k, v in data.items()}
  if type_name == 'object':
    return data
  if type_name == 'str':
    # int64 fields are strings in the OpenAPI spec; proto JSON also takes numbers.
    if isinstance(data, bool) or not isinstance(data, (str, int)):
      raise BadRequest(f'{where}: expected a string, got {data!r}')
    return data
  if type_name == 'int':
    if isinstance(data, bool) or not isinstance(data, int):
      raise BadRequest(f'{where}: expected an integer, got {data!r}')
    return data
  if type_name == 'bool':
    if not isinstance(data, bool):
      raise BadRequest(f'{where}: expected true/false, got {data!r}')
    return data
  if type_name == 'datetime':
    try:
      return datetime.datetime.fromisoformat(str(data).replace('Z', '+00:00'))
    except ValueError:
      raise BadRequest(f'{where}: not an RFC 3339 time: {data!r}') from None
  cls = _model_class(type_name)
  if not cls.openapi_types:  # an enum
    if data not in cls.allowable_values:
      raise BadRequest(f'{where}: {data!r} is not one of {cls.allowable_values}')
    return data
  if not isinstance(data, dict):
    raise BadRequest(f'{where}: expected a {type_name} object, got {data!r}')
  by_json_key = {json_key: attr for attr, json_key in cls.attribute_map.items()}
  unknown = sorted(set(data) - set(by_json_key))
  if unknown:
    raise BadRequest(f'{where}: {type_name} has no field(s) {unknown}')
  kwargs = {by_json_key[k]: parse_model(v, cls.openapi_types[by_json_key[k]], f'{where}.{k}')
            for k, v in data.items()}
  return cls(**kwargs)


def parse_filter(text: str) -> Dict[str, str]:
  """A list filter (JSON of KFP's Filter proto) -> {key: value} of its EQUALS predicates."""
  raw = json.loads(text)
  snake = {'predicates': [{re.sub(r'([A-Z])', lambda m: '_' + m.group(1).lower(), k): v
                           for k, v in p.items()} for p in raw.get('predicates', [])]}
  for p in snake['predicates']:
    p['operation'] = _OPERATIONS.get(p.get('operation'), p.get('operation'))
  parsed = parse_model(snake, 'V2beta1Filter', 'filter')
  return {p.key: p.string_value for p in parsed.predicates if p.operation == 'EQUALS'}


def parse_pipeline_spec(data: bytes) -> pipeline_spec_pb2.PipelineSpec:
  docs = list(yaml.safe_load_all(data))
  try:
    return json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
  except json_format.ParseError as e:
    raise BadRequest(f'uploadfile: not a KFP PipelineSpec: {e}') from None


class FakeKfp:
  """State and a threaded server; use as a context manager."""

  def __init__(self):
    self.requests: List[Dict[str, Any]] = []
    self.errors: List[str] = []
    self.pipelines: Dict[str, Dict[str, Any]] = {}          # id -> {display_name}
    self.versions: Dict[str, List[Dict[str, Any]]] = {}     # pipeline id -> versions
    self.experiments: Dict[str, Dict[str, Any]] = {}
    self.recurring_runs: List[Any] = []
    self.specs: List[pipeline_spec_pb2.PipelineSpec] = []
    self._ids = 0
    fake = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def log_message(self, *args):  # keep test output clean
        pass

      def _answer(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        record = {'method': method, 'path': url.path, 'query': query}
        fake.requests.append(record)
        try:
          status, payload = fake.route(method, url.path, query, body,
                                       self.headers.get('Content-Type', ''), record)
        except BadRequest as e:
          fake.errors.append(f'{method} {url.path}: {e}')
          status, payload = 400, {'error': str(e), 'code': 3, 'message': str(e)}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def do_GET(self):  # pylint: disable=invalid-name
        self._answer('GET')

      def do_POST(self):  # pylint: disable=invalid-name
        self._answer('POST')

    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = f'http://127.0.0.1:{self._server.server_address[1]}'
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._server.shutdown()
    self._server.server_close()
    self._thread.join(timeout=5)

  def _new_id(self, kind: str) -> str:
    self._ids += 1
    return f'{kind}-{self._ids}'

  @staticmethod
  def _now() -> str:
    return datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).isoformat().replace('+00:00', 'Z')

  def _upload(self, body: bytes, content_type: str) -> pipeline_spec_pb2.PipelineSpec:
    if not content_type.startswith('multipart/form-data'):
      raise BadRequest(f'upload: expected multipart/form-data, got {content_type!r}')
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b'Content-Type: ' + content_type.encode() + b'\r\n\r\n' + body)
    files = {part.get_param('name', header='content-disposition'): part
             for part in message.iter_parts()}
    if set(files) != {'uploadfile'}:
      raise BadRequest(f'upload: expected one form field "uploadfile", got {sorted(files)}')
    part = files['uploadfile']
    filename = part.get_filename() or ''
    if not filename.endswith(('.yaml', '.yml')):
      raise BadRequest(f'upload: KFP takes .yaml/.yml (or archives), got {filename!r}')
    spec = parse_pipeline_spec(part.get_payload(decode=True))
    self.specs.append(spec)
    return spec

  def _add_version(self, pipeline_id: str, name: str) -> Dict[str, Any]:
    version = {'pipeline_id': pipeline_id, 'pipeline_version_id': self._new_id('version'),
               'display_name': name, 'created_at': self._now()}
    self.versions.setdefault(pipeline_id, []).append(version)
    return version

  def route(self, method: str, path: str, query: Dict[str, str], body: bytes,
            content_type: str, record: Dict[str, Any]):
    """Answers one request like KFP's API server would; raises BadRequest otherwise."""
    name_filter = parse_filter(query['filter']) if 'filter' in query else {}
    record['filter'] = name_filter
    if method == 'GET' and path == f'{API}/healthz':
      return 200, {'multi_user': False}
    if method == 'GET' and path == f'{API}/pipelines':
      found = [dict(p, pipeline_id=i) for i, p in self.pipelines.items()
               if p['display_name'] == name_filter.get('display_name', p['display_name'])]
      return 200, {'pipelines': found, 'total_size': len(found)} if found else {}
    if method == 'POST' and path == f'{API}/pipelines/upload':
      if not query.get('name'):
        raise BadRequest('upload: query parameter "name" is required')
      if any(p['display_name'] == query['name'] for p in self.pipelines.values()):
        raise BadRequest(f'upload: pipeline {query["name"]!r} already exists')
      self._upload(body, content_type)
      pipeline_id = self._new_id('pipeline')
      self.pipelines[pipeline_id] = {'display_name': query['name'], 'created_at': self._now()}
      self._add_version(pipeline_id, query['name'])
      return 200, dict(self.pipelines[pipeline_id], pipeline_id=pipeline_id)
    match = re.fullmatch(f'{API}/pipelines/([^/]+)/versions', path)
    if method == 'GET' and match:
      versions = [v for v in self.versions.get(match.group(1), [])
                  if v['display_name'] == name_filter.get('display_name', v['display_name'])]
      versions = sorted(versions, key=lambda v: v['pipeline_version_id'], reverse=True)
      page = versions[:int(query.get('page_size', 10))]
      return 200, {'pipeline_versions': page, 'total_size': len(versions)} if page else {}
    if method == 'POST' and path == f'{API}/pipelines/upload_version':
      pipeline_id, name = query.get('pipelineid'), query.get('name')
      if pipeline_id not in self.pipelines or not name:
        raise BadRequest(f'upload_version: unknown pipelineid {pipeline_id!r} or no name')
      if any(v['display_name'] == name for v in self.versions[pipeline_id]):
        raise BadRequest(f'upload_version: version {name!r} already exists')
      self._upload(body, content_type)
      return 200, self._add_version(pipeline_id, name)
    if method == 'GET' and path == f'{API}/experiments':
      found = [dict(e, experiment_id=i) for i, e in self.experiments.items()
               if e['display_name'] == name_filter.get('display_name', e['display_name'])]
      return 200, {'experiments': found, 'total_size': len(found)} if found else {}
    if method == 'POST' and path == f'{API}/experiments':
      experiment = parse_model(json.loads(body), 'V2beta1Experiment')
      record['body'] = experiment
      if not experiment.display_name:
        raise BadRequest('experiment: display_name is required')
      experiment_id = self._new_id('experiment')
      self.experiments[experiment_id] = {'display_name': experiment.display_name,
                                         'created_at': self._now()}
      return 200, dict(self.experiments[experiment_id], experiment_id=experiment_id)
    if method == 'POST' and path == f'{API}/recurringruns':
      raw = json.loads(body)
      run = parse_model(raw, 'V2beta1RecurringRun')
      record['body'] = run
      record['raw'] = raw
      ref = run.pipeline_version_reference
      if run.experiment_id not in self.experiments:
        raise BadRequest(f'recurring run: unknown experiment {run.experiment_id!r}')
      if ref is None or not any(v['pipeline_version_id'] == ref.pipeline_version_id
                                for v in self.versions.get(ref.pipeline_id, [])):
        raise BadRequest(f'recurring run: unknown pipeline version {ref}')
      self.recurring_runs.append(run)
      return 200, dict(raw, recurring_run_id=self._new_id('recurring-run'), status='ENABLED',
                       created_at=self._now())
    raise BadRequest(f'no such route: {method} {path}')

  def calls(self) -> List[str]:
    return [f'{r["method"]} {r["path"]}' for r in self.requests]
