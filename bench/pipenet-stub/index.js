// mcp-proxy imports pipenet for its --tunnel option, which the bench never uses; the real pipenet declares Node >= 22,
// which made every install on the supported Node 20 warn. See the "// overrides" note in package.json.
export async function pipenet() {
  throw new Error('pipenet is stubbed in the Gatehouse dev tree: mcp-proxy --tunnel is not available here');
}
