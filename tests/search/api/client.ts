// What a TypeScript integrator writes on the types `openapi-typescript` generates from the
// schema (api.d.ts). tests/search/api/test_typescript_types.py type-checks it with
// `tsc --noEmit --strict`: a field the schema loses or renames fails the check, and the
// `@ts-expect-error` lines fail it if the types ever become `any`.
import type { components, operations } from "./api";

type Schemas = components["schemas"];
// An operation's JSON request body (`never` for one without, so a call to it does not compile).
type JsonBody<Op extends keyof operations> = operations[Op] extends {
  requestBody?: { content: { "application/json": infer Body } };
}
  ? Body
  : never;

const BASE_URL = "http://127.0.0.1:8000";

async function call<Output>(path: string, init?: RequestInit): Promise<Output> {
  const answer = await fetch(BASE_URL + path, init);
  if (!answer.ok) {
    // Every error answer of every operation is an Error body.
    const error: Schemas["Error"] = await answer.json();
    throw new Error(`${answer.status} ${error.error}`);
  }
  return answer.json();
}

function postJson<Output>(path: string, body: unknown): Promise<Output> {
  return call<Output>(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

export function searchText(
  query: operations["search_text"]["parameters"]["query"],
): Promise<Schemas["SearchOutput"]> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.set(name, String(value));
  }
  return call(`/api/v1/search/text/?${params}`);
}

export const searchImage = (body: JsonBody<"search_image">) =>
  postJson<Schemas["SearchOutput"]>("/api/v1/search/image/", body);
export const searchHybrid = (body: JsonBody<"search_hybrid">, offset = 0) =>
  postJson<Schemas["SearchOutput"]>(`/api/v1/search/hybrid/?offset=${offset}`, body);
export const moreLikeThis = (id: operations["search_similar"]["parameters"]["path"]["id"]) =>
  call<Schemas["SearchOutput"]>(`/api/v1/products/${id}/similar/`);
export const searchLook = (body: JsonBody<"search_look">) =>
  postJson<Schemas["DetectOutput"]>("/api/v1/search/look/", body);
export const describe = (body: JsonBody<"describe">) =>
  postJson<Schemas["DescribeOutput"]>("/api/v1/describe/", body);
export const similarity = (body: JsonBody<"similarity">) =>
  postJson<Schemas["SimilarityOutput"]>("/api/v1/similarity/", body);

export async function examples(dataUrl: string, photo: Blob, productId: number) {
  // Text, cheapest first; a page links to the next one
  const page = await searchText({ q: "red sneaker", sort: "price_asc", limit: 12 });
  const lines = page.results.map(
    (card) => `${card.rank} ${card.title} ${card.price} ${card.score.toFixed(3)}`,
  );
  const next: string | null = page.has_more ? page.next : null;
  const total = page.total_exact ? `${page.total}` : `more than ${page.total}`;

  // Photo as JSON (a data URL), "this, but in red"; the defaults (sort, offset...) may be left out
  const red = await searchImage({ image: dataUrl, text: "red", auto_crop: false });

  // Photo as a multipart upload: the field names are the Upload component's
  const form = new FormData();
  const field: keyof Schemas["ImageSearchUpload"] = "image";
  form.set(field, photo, "look.png");
  const same = await call<Schemas["SearchOutput"]>("/api/v1/search/image/", {
    method: "POST",
    body: form,
  });

  // Several weighted terms (JSON only): words with weights, a product, a photo; dearest first
  const mix = await searchHybrid({
    text: { red: 1.0, stripes: -0.3 },
    products: [{ product: productId, weight: 0.7 }],
    images: [{ image: dataUrl, weight: 0.5 }],
    sort: "price_desc",
    limit: 2,
  });
  const more = mix.has_more
    ? await searchHybrid({ text: { red: 1 } }, mix.offset + mix.limit)
    : null;

  // More like this, shop the look, describe, similarity
  const similar = (await moreLikeThis(productId)).results.map((card) => card.id);
  const look = await searchLook({ image: dataUrl, max_items: 3 });
  const boxes = look.items.map((item) => [item.category ?? "?", ...item.box, item.confidence]);
  const described = await describe({ product: productId, top: 3 });
  const category: string = described.categories[0].name;
  const score: number = (await similarity({ text: "a red sneaker", image: dataUrl })).score;

  // Errors are typed too: the 400 of text search is the shared Error component
  const invalid: operations["search_text"]["responses"][400]["content"]["application/json"] = {
    error: "Invalid request: category: Unknown category 'shoez'",
    detail: { category: ["Unknown category 'shoez'"] },
  };
  const tooMany: Schemas["Error"] = { error: "Too many requests" };

  // Wrong usages the types must refuse (if they became `any`, these lines would fail tsc)
  // @ts-expect-error sort is an enum: a typo does not compile
  await searchText({ q: "sneaker", sort: "cheapest" });
  // @ts-expect-error hybrid text terms are weights, not strings
  await searchHybrid({ text: { red: "much" } });
  // @ts-expect-error an answer's total is a number
  const wrongTotal: string = page.total;
  // @ts-expect-error an error body has no 'message'
  const wrongError: Schemas["Error"] = { message: "nope" };

  return {
    lines, next, total, red, same, more, similar, boxes, category, score,
    invalid, tooMany, wrongTotal, wrongError,
  };
}
