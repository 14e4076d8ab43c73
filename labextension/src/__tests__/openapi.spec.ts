/**
 * types.ts is a hand copy of the server's OpenAPI document: these tests read both and fail
 * when a field, a status word or a follow_logs line is in one but not the other; likewise
 * the answers of panelapi.ts that mirror a schema.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

/** Each interface of types.ts that mirrors a schema, and that schema. */
const MIRRORS: [string, string][] = [
  ['IEngineInfo', 'EngineInfo'],
  ['IWorkspace', 'Workspace'],
  ['IWorkspaceList', 'WorkspaceList'],
  ['IOrchestration', 'Orchestration'],
  ['ITaskRunSummary', 'TaskRunSummary'],
  ['ISkip', 'Skip'],
  ['ITask', 'Task'],
  ['ITaskRun', 'TaskRun'],
  ['IRunNowAnswer', 'RunNowAnswer'],
  ['IFailedTaskRun', 'FailedRun'],
  ['IActivity', 'Activity'],
  ['IIdAnswer', 'IdAnswer'],
  ['ITaskRequest', 'RunOnceRequest'],
  ['ITaskRequest', 'RunContinuouslyRequest'],
  ['IScheduledRequest', 'RunScheduledRequest']
];

/** Each answer of panelapi.ts (the calls beyond the sidebar's) that mirrors a schema. */
const PANEL_MIRRORS: [string, string][] = [
  ['IDeleteResult', 'DeleteResult'],
  ['ITaskDeleteResult', 'TaskDeleteResult']
];

/** The interfaces of types.ts that are the sidebar's own, mirroring no schema. */
const OWN = ['ITaskQuery', 'IOrchApi'];

/** Each word list of types.ts, and the schema whose `enum` it copies. */
const ENUMS: [string, string][] = [
  ['OrchestrationStatus', 'OrchestrationStatus'],
  ['TaskStatus', 'TaskStatus'],
  ['RunStatus', 'RunStatus'],
  ['RunType', 'RunType'],
  ['Flavor', 'Flavor'],
  ['ConcurrencyPolicy', 'ConcurrencyPolicy']
];

/** Whether a field must be there. */
type Presence = 'required' | 'optional';

interface ISchema {
  properties?: Record<string, ISchema>;
  required?: string[];
  enum?: string[];
  oneOf?: ISchema[];
}

/** The nearest `relative` path in this folder or one above it. */
function findUp(...relatives: string[]): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    for (const relative of relatives) {
      const candidate = path.join(dir, relative);
      if (fs.existsSync(candidate)) {
        return candidate;
      }
    }
    if (path.dirname(dir) === dir) {
      throw new Error(`none of ${relatives} in ${__dirname} or above`);
    }
  }
}

const OPENAPI = findUp(
  path.join('jupyter_orch', 'openapi.json'),
  path.join('src', 'jupyter_orch', 'openapi.json')
);
const TYPES = path.resolve(__dirname, '..', 'types.ts');

const schemas = (
  JSON.parse(fs.readFileSync(OPENAPI, 'utf8')) as {
    components: { schemas: Record<string, ISchema> };
  }
).components.schemas;

const PANEL_API = path.resolve(__dirname, '..', 'panelapi.ts');

const program = ts.createProgram([TYPES, PANEL_API], {
  strict: true,
  noEmit: true,
  noLib: true,
  types: []
});
const checker = program.getTypeChecker();

/** What a module of the extension exports, by name. */
function exportsOf(file: string): Map<string, ts.Symbol> {
  const source = program.getSourceFile(file);
  if (!source) {
    throw new Error(`cannot read ${file}`);
  }
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) {
    throw new Error(`${file} exports nothing`);
  }
  return new Map(
    checker.getExportsOfModule(moduleSymbol).map(s => [s.name, s])
  );
}

const exported = exportsOf(TYPES);
const panelExported = exportsOf(PANEL_API);

function schema(name: string): ISchema {
  const found = schemas[name];
  if (!found) {
    throw new Error(`no schema ${name} in ${OPENAPI}`);
  }
  return found;
}

function declaredType(
  name: string,
  exports: Map<string, ts.Symbol> = exported
): ts.Type {
  const symbol = exports.get(name);
  if (!symbol) {
    throw new Error(`no export ${name}`);
  }
  return checker.getDeclaredTypeOfSymbol(symbol);
}

/** The fields of a type (with those it extends) and whether each is optional (`?`). */
function fieldsOfType(type: ts.Type): Record<string, Presence> {
  const fields: Record<string, Presence> = {};
  for (const property of checker.getPropertiesOfType(type)) {
    const optional = (property.flags & ts.SymbolFlags.Optional) !== 0;
    fields[property.name] = optional ? 'optional' : 'required';
  }
  return fields;
}

/** The properties of an object schema and whether each is in its `required` list. */
function propertiesOf(object: ISchema): Record<string, Presence> {
  const required = new Set(object.required ?? []);
  const fields: Record<string, Presence> = {};
  for (const name of Object.keys(object.properties ?? {})) {
    fields[name] = required.has(name) ? 'required' : 'optional';
  }
  return fields;
}

/** The words of a union of string literals. */
function wordsOf(type: ts.Type): string[] {
  const parts = type.isUnion() ? type.types : [type];
  return parts.map(part => {
    if (!part.isStringLiteral()) {
      throw new Error(`${checker.typeToString(type)} is not a list of words`);
    }
    return part.value;
  });
}

describe('types.ts and openapi.json', () => {
  it.each(MIRRORS)(
    '%s has the fields of the schema %s',
    (iface: string, name: string) => {
      expect(fieldsOfType(declaredType(iface))).toEqual(
        propertiesOf(schema(name))
      );
    }
  );

  it.each(PANEL_MIRRORS)(
    '%s of panelapi.ts has the fields of the schema %s',
    (iface: string, name: string) => {
      expect(fieldsOfType(declaredType(iface, panelExported))).toEqual(
        propertiesOf(schema(name))
      );
    }
  );

  it('names every interface: a mirror of a schema, or the sidebar’s own', () => {
    const interfaces = [...exported.values()]
      .filter(s => (s.flags & ts.SymbolFlags.Interface) !== 0)
      .map(s => s.name)
      .sort();
    const named = [...new Set([...MIRRORS.map(([iface]) => iface), ...OWN])];
    expect(interfaces).toEqual(named.sort());
  });

  it.each(ENUMS)(
    'the words of %s are those of the schema %s',
    (alias: string, name: string) => {
      expect(wordsOf(declaredType(alias)).sort()).toEqual(
        [...(schema(name).enum ?? [])].sort()
      );
    }
  );

  it('a run’s trigger words are those of the schema TaskRun', () => {
    const trigger = checker
      .getPropertiesOfType(declaredType('ITaskRun'))
      .find(p => p.name === 'trigger');
    expect(trigger).toBeDefined();
    const type = checker.getTypeOfSymbol(trigger as ts.Symbol);
    expect(wordsOf(type).sort()).toEqual(
      [...(schema('TaskRun').properties?.trigger?.enum ?? [])].sort()
    );
  });

  it('each follow_logs line of FollowEvent is one of FollowLine', () => {
    const union = declaredType('FollowEvent');
    const lines = (union.isUnion() ? union.types : [union]).map(fieldsOfType);
    const schemaLines = (schema('FollowLine').oneOf ?? []).map(propertiesOf);
    expect(schemaLines.length).toBeGreaterThan(0);
    expect(lines).toEqual(expect.arrayContaining(schemaLines));
    expect(schemaLines).toEqual(expect.arrayContaining(lines));
  });
});
