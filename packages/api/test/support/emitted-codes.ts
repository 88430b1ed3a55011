import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

/** One place a source file produces a problem code: the status (if literal) and the code (literal or pattern). */
export interface EmittedCode {
  file: string;
  line: number;
  status: number | undefined;
  /** The code, or for a template literal the pattern with `*` for each substitution. */
  code: string | undefined;
  /** The source text of the call, for messages. */
  text: string;
}

/** Classes that fix their status and take the code as first argument. */
const FIXED_STATUS: Record<string, number> = { Conflict: 409, BadRequest: 400, Unprocessable: 422 };
/** Classes (and writers) taking `(status, code, ...)`. */
const STATUS_CODE = new Set(['DomainError', 'AgentError', 'AgentRefused']);

export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name)) out.push(p);
  }
  return out;
}

function literal(node: ts.Expression | undefined): string | undefined {
  if (!node) return undefined;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node))
    return node.head.text + node.templateSpans.map((s) => `*${s.literal.text}`).join('');
  return undefined;
}

function status(node: ts.Expression | undefined): number | undefined {
  return node && ts.isNumericLiteral(node) ? Number(node.text) : undefined;
}

/**
 * Every problem code the sources under `root` can emit, read from the syntax tree: `new DomainError(409, 'x')`,
 * `new Conflict('x')`, `new NotFound('vm')` (`vm_not_found`), `super(404, 'x')` in an error class,
 * `sendProblem(reply, req, 404, 'x')` / `problem(reply, req, …)` and `{ code: 'x' }` objects sent with
 * `reply.code(N).send(…)`.
 */
export function emittedCodes(root: string, base = root): EmittedCode[] {
  const out: EmittedCode[] = [];
  for (const file of sourceFiles(root)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const add = (node: ts.Node, s: number | undefined, c: string | undefined) =>
      out.push({
        file: relative(base, file),
        line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1,
        status: s,
        code: c,
        text: node.getText().slice(0, 160),
      });
    const visit = (node: ts.Node): void => {
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression)) {
        const name = node.expression.text;
        const args = node.arguments ?? ts.factory.createNodeArray();
        if (STATUS_CODE.has(name)) add(node, status(args[0]), literal(args[1]));
        else if (name in FIXED_STATUS) add(node, FIXED_STATUS[name], literal(args[0]));
        else if (name === 'NotFound') {
          const resource = literal(args[0]);
          add(node, 404, resource === undefined ? undefined : `${resource}_not_found`);
        }
      }
      if (ts.isCallExpression(node)) {
        const callee = node.expression;
        if (callee.kind === ts.SyntaxKind.SuperKeyword && node.arguments.length >= 2 && status(node.arguments[0]))
          add(node, status(node.arguments[0]), literal(node.arguments[1]));
        if (ts.isIdentifier(callee) && (callee.text === 'sendProblem' || callee.text === 'problem'))
          add(node, status(node.arguments[2]), literal(node.arguments[3]));
        if (ts.isIdentifier(callee) && callee.text === 'writeProblem') {
          const opts = node.arguments[1];
          if (opts && ts.isObjectLiteralExpression(opts)) {
            const prop = (n: string) =>
              opts.properties.find(
                (p): p is ts.PropertyAssignment =>
                  ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === n,
              )?.initializer;
            add(node, status(prop('status')), literal(prop('code')));
          }
        }
        // reply.code(404).send({ code: 'x', ... })
        if (
          ts.isPropertyAccessExpression(callee) &&
          callee.name.text === 'send' &&
          ts.isCallExpression(callee.expression) &&
          ts.isPropertyAccessExpression(callee.expression.expression) &&
          callee.expression.expression.name.text === 'code'
        ) {
          const body = node.arguments[0];
          if (body && ts.isObjectLiteralExpression(body)) {
            const code = body.properties.find(
              (p): p is ts.PropertyAssignment =>
                ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === 'code',
            );
            if (code) add(node, status(callee.expression.arguments[0]), literal(code.initializer));
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}
