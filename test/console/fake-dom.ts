/**
 * Just enough of a browser to run the console's script in a vm context: elements as a tree of
 * nodes and strings (text), events, location.hash, sessionStorage, and fetch relayed to the
 * service over HTTP. There is no HTML parser at all, and assigning innerHTML throws, so a page
 * that inserted API data as markup would fail here.
 */
import vm from "node:vm";

type Listener = (ev: FakeEvent) => unknown;

export interface FakeEvent {
  type: string;
  target: FakeNode;
  currentTarget: FakeNode;
  preventDefault(): void;
  stopPropagation(): void;
}

export class FakeNode {
  readonly attrs = new Map<string, string>();
  children: (FakeNode | string)[] = [];
  parent: FakeNode | null = null;
  hidden = false;
  disabled = false;
  className = "";
  value = "";
  private readonly listeners = new Map<string, Listener[]>();

  constructor(
    readonly tag: string,
    private readonly doc: FakeDocument,
  ) {}

  get textContent(): string {
    return this.children.map((c) => (typeof c === "string" ? c : c.textContent)).join("");
  }
  set textContent(v: string) {
    this.replaceChildren(String(v));
  }
  set innerHTML(_v: string) {
    throw new Error("the console assigned innerHTML");
  }
  set outerHTML(_v: string) {
    throw new Error("the console assigned outerHTML");
  }
  insertAdjacentHTML(): never {
    throw new Error("the console called insertAdjacentHTML");
  }

  append(...items: (FakeNode | string)[]): void {
    for (const item of items) {
      if (typeof item !== "string") item.parent = this;
      this.children.push(item);
    }
  }
  replaceChildren(...items: (FakeNode | string)[]): void {
    this.children = [];
    this.append(...items);
  }
  setAttribute(name: string, value: string): void {
    this.attrs.set(name, value);
    if (name === "disabled") this.disabled = true;
    if (name === "value") this.value = value;
  }
  addEventListener(type: string, fn: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  /** Calls the listeners of this node and its ancestors (bubbling); returns whether the default
   *  was prevented. */
  dispatch(type: string): boolean {
    let prevented = false;
    let stopped = false;
    for (let n: FakeNode | null = this; n && !stopped; n = n.parent) {
      for (const fn of n.listeners.get(type) ?? []) {
        fn({
          type,
          target: this,
          currentTarget: n,
          preventDefault: () => {
            prevented = true;
          },
          stopPropagation: () => {
            stopped = true;
          },
        });
      }
    }
    return prevented;
  }
  focus(): void {
    this.doc.activeElement = this;
  }
  matches(selector: string): boolean {
    return selector.split(",").some((s) => s.trim() === this.tag);
  }
  closest(selector: string): FakeNode | null {
    for (let n: FakeNode | null = this; n; n = n.parent) if (n.matches(selector)) return n;
    return null;
  }
  contains(other: FakeNode | null): boolean {
    for (let n = other; n; n = n.parent) if (n === this) return true;
    return false;
  }
  /** Every element under this one (depth first) that passes `test`. */
  findAll(test: (n: FakeNode) => boolean): FakeNode[] {
    const out: FakeNode[] = [];
    for (const c of this.children) {
      if (typeof c === "string") continue;
      if (test(c)) out.push(c);
      out.push(...c.findAll(test));
    }
    return out;
  }
}

export class FakeDocument {
  visibilityState: "visible" | "hidden" = "visible";
  activeElement: FakeNode;
  readonly body: FakeNode;
  private readonly byId = new Map<string, FakeNode>();
  private readonly listeners = new Map<string, (() => unknown)[]>();

  /** The page's static elements: every tag with an id in the HTML, `hidden` as written. */
  constructor(html: string) {
    this.body = new FakeNode("body", this);
    this.activeElement = this.body;
    for (const m of html.matchAll(/<(\w+)\b([^>]*)>/g)) {
      const id = /\sid="([^"]+)"/.exec(m[2] ?? "")?.[1];
      if (!id) continue;
      const node = new FakeNode(m[1] ?? "", this);
      node.hidden = /\shidden\b/.test(m[2] ?? "");
      this.body.append(node);
      this.byId.set(id, node);
    }
  }
  getElementById(id: string): FakeNode {
    const node = this.byId.get(id);
    if (!node) throw new Error(`the page has no element #${id}`);
    return node;
  }
  createElement(tag: string): FakeNode {
    return new FakeNode(tag, this);
  }
  addEventListener(type: string, fn: () => unknown): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  fire(type: string): void {
    for (const fn of this.listeners.get(type) ?? []) fn();
  }
}

export interface FetchRecord {
  method: string;
  path: string;
  status: number;
}

/** The console's script running against `base` (the URL the page was loaded from). */
export class FakeBrowser {
  readonly document: FakeDocument;
  readonly fetches: FetchRecord[] = [];
  /** setTimeout calls of the page; they never fire on their own (tests call them). */
  readonly timers: { fn: () => unknown; ms: number; cleared: boolean }[] = [];
  readonly storage = new Map<string, string>();
  private hash = "";
  private readonly windowListeners = new Map<string, (() => unknown)[]>();
  private inflight = 0;

  /** `start` is the tab's state when the script loads: its sessionStorage and location hash. */
  constructor(
    html: string,
    script: string,
    private readonly base: string,
    start: { storage?: Record<string, string>; hash?: string } = {},
  ) {
    this.document = new FakeDocument(html);
    for (const [k, v] of Object.entries(start.storage ?? {})) this.storage.set(k, v);
    this.hash = start.hash ?? "";
    const storage = this.storage;
    const self = this;
    const context = vm.createContext({
      document: this.document,
      Node: FakeNode,
      window: {
        addEventListener: (type: string, fn: () => unknown) => {
          this.windowListeners.set(type, [...(this.windowListeners.get(type) ?? []), fn]);
        },
      },
      location: {
        get hash() {
          return self.hash;
        },
        set hash(v: string) {
          self.navigate(v);
        },
      },
      sessionStorage: {
        getItem: (k: string) => storage.get(k) ?? null,
        setItem: (k: string, v: string) => void storage.set(k, String(v)),
        removeItem: (k: string) => void storage.delete(k),
      },
      fetch: (path: string, init: { method?: string; headers?: Record<string, string> }) =>
        this.fetch(path, init),
      setTimeout: (fn: () => unknown, ms: number) => this.timers.push({ fn, ms, cleared: false }),
      clearTimeout: (id: number) => {
        const t = this.timers[id - 1];
        if (t) t.cleared = true;
      },
      console,
    });
    vm.runInContext(script, context);
  }

  private async fetch(
    path: string,
    init: { method?: string; headers?: Record<string, string> },
  ): Promise<Response> {
    this.inflight += 1;
    try {
      const method = init.method ?? "GET";
      const res = await fetch(new URL(path, this.base), {
        method,
        ...(init.headers ? { headers: init.headers } : {}),
      });
      this.fetches.push({ method, path, status: res.status });
      // Read here, so that once no request is in flight the page has only in-memory work left.
      const body = await res.text();
      return new Response(body === "" ? null : body, {
        status: res.status,
        statusText: res.statusText,
        headers: res.headers,
      });
    } finally {
      this.inflight -= 1;
    }
  }

  /** Waits until the page's requests have answered and its promise chains have run. */
  async settle(): Promise<void> {
    for (let quiet = 0; quiet < 10; ) {
      await new Promise((resolve) => setImmediate(resolve));
      quiet = this.inflight === 0 ? quiet + 1 : 0;
    }
  }

  navigate(hash: string): void {
    this.hash = hash;
    // Browsers fire hashchange asynchronously.
    queueMicrotask(() => {
      for (const fn of this.windowListeners.get("hashchange") ?? []) fn();
    });
  }

  get location(): string {
    return this.hash;
  }
  el(id: string): FakeNode {
    return this.document.getElementById(id);
  }
  /** Timers of the page set and neither cleared nor run yet. */
  pendingTimers(): { fn: () => unknown; ms: number; cleared: boolean }[] {
    return this.timers.filter((t) => !t.cleared);
  }
  /** Runs the pending timers, as if their time had come. */
  fireTimers(): void {
    for (const t of this.pendingTimers()) {
      t.cleared = true;
      t.fn();
    }
  }
}

/** Buttons (or other elements) whose text is exactly `text`. */
export function byText(root: FakeNode, tag: string, text: string): FakeNode[] {
  return root.findAll((n) => n.tag === tag && n.textContent === text);
}
