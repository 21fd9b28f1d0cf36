// aivault's version, as the CLI and the MCP server report it (package.json holds the same;
// a test holds them together).

export const VERSION = '0.1.0';
