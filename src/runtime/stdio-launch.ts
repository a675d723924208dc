// What the CLI may start before the gateway is built (gatehouse wrap's server, early): the adapter, as the
// composition root hands it out.
export { launchStdioServer, type LaunchedServer } from '../../adapters/mcp/stdio-launch.ts';
