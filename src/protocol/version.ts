/** This Gatehouse's version: in `serverInfo`, and what a pack's `requires` is checked against. */
export const GATEHOUSE_VERSION = '0.1.0';
