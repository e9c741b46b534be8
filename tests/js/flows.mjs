// The official Langfuse JS SDK (@langfuse/tracing, @langfuse/otel, @langfuse/client) as a plain
// user: run by tests/e2e/test_sdk_js.py as `node flows.mjs TAG` with LANGFUSE_PUBLIC_KEY,
// LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL pointing at a test server. It traces, scores, manages
// prompts and datasets, runs an experiment, flushes, and prints ONE JSON line (the ids and values
// to check); the assertions run in the Python test, which reads everything back through the API.
import { readFileSync } from "node:fs";

import { LangfuseClient } from "@langfuse/client";
import { LangfuseSpanProcessor } from "@langfuse/otel";
import { propagateAttributes, startActiveObservation, startObservation } from "@langfuse/tracing";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const tag = process.argv[2];
const processor = new LangfuseSpanProcessor({ exportMode: "immediate" });
const provider = new NodeTracerProvider({ spanProcessors: [processor] });
provider.register();
const langfuse = new LangfuseClient();

const TYPES = ["span", "generation", "agent", "tool", "chain", "retriever", "evaluator", "embedding", "guardrail",
  "event"];
const out = { tag, observations: {} };

// --- tracing: every observation type, propagated attributes, generations with usage and cost ---
await startActiveObservation(`js-root-${tag}`, async (root) => {
  out.trace_id = root.traceId;
  out.observations.root = root.id;
  root.update({ input: { question: "what is 2+2?" } });
  await propagateAttributes(
    { userId: `user-${tag}`, sessionId: `session-${tag}`, tags: ["js", "e2e"], metadata: { tenant: "acme" },
      version: "js-v1", traceName: `js-trace-${tag}` },
    async () => {
      for (const asType of TYPES) {
        const obs = startObservation(`${asType}-${tag}`, {
          input: { q: asType }, output: { a: asType }, metadata: { kind: asType }, level: "WARNING",
          statusMessage: `${asType} warned`,
        }, { asType });
        out.observations[asType] = obs.id;
        if (asType !== "event") obs.end();
      }
      const priced = startObservation(`priced-${tag}`, {
        model: "gpt-4o-mini", modelParameters: { temperature: 0.2, max_tokens: 64 },
        input: [{ role: "user", content: "2+2?" }], usageDetails: { input: 1000, output: 100 },
      }, { asType: "generation" });
      priced.update({ output: { role: "assistant", content: "4" } });
      priced.end();
      out.observations.priced = priced.id;
      const provided = startObservation(`provided-${tag}`, {
        model: "my-own-model", usageDetails: { input: 10, output: 5 }, costDetails: { input: 0.001, output: 0.002 },
      }, { asType: "generation" });
      provided.end();
      out.observations.provided = provided.id;
    },
  );
  root.update({ output: "4" });
});

// --- scores ---
langfuse.score.create({ traceId: out.trace_id, name: "accuracy", value: 0.9, comment: "js" });
langfuse.score.create({ traceId: out.trace_id, observationId: out.observations.priced, name: "tone",
  value: "friendly", dataType: "CATEGORICAL" });
langfuse.score.create({ traceId: out.trace_id, name: "passed", value: 1, dataType: "BOOLEAN" });

// --- prompts: create (two versions and a chat prompt), get by label and version, compile ---
const promptName = `js-prompt-${tag}`;
await langfuse.prompt.create({ name: promptName, prompt: "Hello {{name}}!", labels: ["production"],
  config: { temperature: 0.1 }, tags: ["js"] });
await langfuse.prompt.create({ name: promptName, prompt: "Hi {{name}}, welcome.", labels: ["staging"] });
await langfuse.prompt.create({ name: `js-chat-${tag}`, type: "chat", labels: ["production"],
  prompt: [{ role: "system", content: "You are {{role}}." }, { role: "user", content: "{{question}}" }] });
const production = await langfuse.prompt.get(promptName, { cacheTtlSeconds: 0 });
const staging = await langfuse.prompt.get(promptName, { label: "staging", cacheTtlSeconds: 0 });
const v1 = await langfuse.prompt.get(promptName, { version: 1, cacheTtlSeconds: 0 });
const chat = await langfuse.prompt.get(`js-chat-${tag}`, { type: "chat", cacheTtlSeconds: 0 });
out.prompts = {
  name: promptName,
  production: { version: production.version, compiled: production.compile({ name: "Ada" }),
    config: production.config, labels: production.labels },
  staging: { version: staging.version, compiled: staging.compile({ name: "Ada" }) },
  v1: { version: v1.version, prompt: v1.prompt },
  chat: chat.compile({ role: "a tutor", question: "2+2?" }),
};

// --- datasets and an experiment on them ---
const datasetName = `js-dataset-${tag}`;
await langfuse.api.datasets.create({ name: datasetName, description: "from js", metadata: { source: "js" } });
for (const [q, a] of [["2+2", "4"], ["3+3", "6"]]) {
  await langfuse.dataset.createItem({ datasetName, input: { q }, expectedOutput: a, metadata: { q } });
}
const dataset = await langfuse.dataset.get(datasetName);
const result = await dataset.runExperiment({
  name: `js-experiment-${tag}`,
  description: "js experiment",
  task: async ({ input }) => String(eval(input.q)),
  evaluators: [async ({ output, expectedOutput }) => ({ name: "exact", value: output === expectedOutput ? 1 : 0 })],
  runEvaluators: [async ({ itemResults }) => ({ name: "mean_exact", value: itemResults.length ? 1 : 0 })],
});
out.dataset = { name: datasetName, id: dataset.id, items: dataset.items.map((i) => i.id) };
out.experiment = { runName: result.runName, datasetRunId: result.datasetRunId,
  traceIds: result.itemResults.map((r) => r.traceId), outputs: result.itemResults.map((r) => r.output) };

await langfuse.flush();
await processor.forceFlush();
await provider.shutdown();
await langfuse.shutdown();
out.sdk_version = JSON.parse(readFileSync(new URL("./node_modules/@langfuse/client/package.json",
  import.meta.url), "utf8")).version;
console.log(JSON.stringify(out));
