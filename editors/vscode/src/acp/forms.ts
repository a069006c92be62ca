// `elicitation/create` in form mode (ratchet's `ask_human` questions and plan approvals): the
// flat schema as a list of fields, asked one after the other by the editor's `FormAsker`, the
// answers as the response. Dismissing a required field cancels the form. No `vscode` import;
// mirrors ratchet.nvim's elicitation.lua.
import { ErrorCode, RpcError } from "./jsonrpc";

export interface Choice {
  value: string | number | boolean;
  label: string;
}

export interface FormField {
  name: string;
  /** The property's title (else its name). */
  label: string;
  description: string | undefined;
  required: boolean;
  kind: "boolean" | "choice" | "multi" | "text" | "number";
  choices: Choice[];
  default: unknown;
}

/** Asks one field; undefined when the user dismissed it. The form's message comes with the first. */
export type FormAsker = (field: FormField, message: string | undefined) => Promise<unknown>;

type Prop = Record<string, unknown>;

/** `{value, label}` choices of an enum-like schema (`oneOf`/`anyOf` of consts, or `enum`). */
function choicesOf(prop: Prop): Choice[] {
  const consts = (prop.oneOf ?? prop.anyOf) as Array<{ const: Choice["value"]; title?: string }> | undefined;
  if (Array.isArray(consts) && consts.length > 0) return consts.map((o) => ({ value: o.const, label: o.title ?? String(o.const) }));
  const values = prop.enum as Choice["value"][] | undefined;
  const names = prop.enumNames as string[] | undefined;
  return Array.isArray(values) ? values.map((v, i) => ({ value: v, label: names?.[i] ?? String(v) })) : [];
}

/** The schema's fields: the required ones first (in the schema's order), then the rest. */
export function formFields(schema: unknown): FormField[] {
  const s = (schema ?? {}) as { properties?: Record<string, Prop>; required?: string[] };
  const props = s.properties ?? {};
  const required = new Set(s.required ?? []);
  const names = [...(s.required ?? []).filter((n) => n in props), ...Object.keys(props).filter((n) => !required.has(n))];
  return names.map((name) => {
    const prop = props[name];
    const choices = prop.type === "array" ? choicesOf((prop.items ?? {}) as Prop) : choicesOf(prop);
    const kind: FormField["kind"] =
      prop.type === "boolean" ? "boolean" : prop.type === "array" ? "multi" : choices.length > 0 ? "choice" : prop.type === "number" || prop.type === "integer" ? "number" : "text";
    return {
      name,
      label: typeof prop.title === "string" ? prop.title : name,
      description: typeof prop.description === "string" ? prop.description : undefined,
      required: required.has(name),
      kind,
      choices,
      default: prop.default,
    };
  });
}

export type FormResponse = { action: "accept"; content: Record<string, unknown> } | { action: "cancel" };

/** Answers one `elicitation/create` request by asking each field in turn. */
export async function answerForm(params: unknown, ask: FormAsker): Promise<FormResponse> {
  const p = (params ?? {}) as { mode?: string; message?: string; requestedSchema?: unknown };
  if (p.mode !== "form" || typeof p.requestedSchema !== "object" || p.requestedSchema === null) {
    throw new RpcError(ErrorCode.InvalidParams, "this client answers form elicitations only (mode \"form\" with a requestedSchema)");
  }
  const content: Record<string, unknown> = {};
  let message: string | undefined = p.message;
  for (const field of formFields(p.requestedSchema)) {
    const value = await ask(field, message);
    message = undefined;
    const empty = value === undefined || value === null || value === "" || (field.kind === "number" && Number.isNaN(Number(value)));
    if (empty) {
      if (field.required) return { action: "cancel" };
      continue;
    }
    content[field.name] = field.kind === "number" ? Number(value) : value;
  }
  return { action: "accept", content };
}
