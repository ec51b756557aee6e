// The order workflow, in TypeScript: validate and charge in steps, wait for a person's approval
// (a callback), wait a moment, then ship. Built with esbuild (the template's BuildMethod).
import { withDurableExecution, type DurableContext } from "@aws/durable-execution-sdk-js";
import { record } from "./record.mjs";

interface Order {
  key: string;
  orderId: string;
  total: number;
}

interface Shipped {
  orderId: string;
  charged: number;
  approval: string;
  shipment: string;
}

export const handler = withDurableExecution(async (order: Order, context: DurableContext): Promise<Shipped> => {
  const validated = await context.step("validate", async () => {
    record(`${order.key} validate`);
    if (order.total <= 0) throw new Error(`order ${order.orderId} has no total`);
    return { ...order, valid: true };
  });
  const charged = await context.step("charge", async () => {
    record(`${order.key} charge`);
    return validated.total;
  });
  const approval = await context.waitForCallback<string>(
    "approval",
    async (callbackId: string) => {
      record(`${order.key} approval ${callbackId}`);
    },
    { timeout: { hours: 1 } },
  );
  await context.wait({ seconds: 1 });
  const shipment = await context.step("ship", async () => {
    record(`${order.key} ship`);
    return `shipment of ${order.orderId}`;
  });
  context.logger.info("shipped", order.orderId);
  return { orderId: order.orderId, charged, approval, shipment };
});
