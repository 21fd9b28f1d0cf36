// Examples for every command's --help, in one place so none is forgotten: a test walks
// the command tree and fails on a command without any.

import type { Command } from 'commander';

export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  init: ['aivault init', 'aivault init --key-provider keyfile --key-file ~/.aivault/master.key', 'AIVAULT_MASTER_KEY=$(openssl rand -base64 32) aivault init --key-provider env'],
  secrets: ['aivault secrets create --name OPENAI_API_KEY --value-stdin', 'aivault secrets list', 'aivault secrets rotate OPENAI_API_KEY --value-stdin'],
  'secrets create': ['printf %s "$KEY" | aivault secrets create --name OPENAI_API_KEY --value-stdin', 'aivault secrets create --name TEAM_TOKEN --value-file token.txt --scope workspace:acme --description "CI token"', 'aivault secrets create --name OPENAI_API_KEY --value-stdin --scope group --workspace-id acme --group-id ml'],
  'secrets list': ['aivault secrets list', 'aivault secrets list --scope workspace:acme --json'],
  'secrets describe': ['aivault secrets describe OPENAI_API_KEY', 'aivault secrets describe vault:secret:3f9c… --json'],
  'secrets rotate': ['printf %s "$NEW_KEY" | aivault secrets rotate OPENAI_API_KEY --value-stdin'],
  'secrets rollback': ['aivault secrets rollback OPENAI_API_KEY'],
  'secrets delete': ['aivault secrets delete OLD_TOKEN --yes', 'aivault secrets delete OLD_TOKEN --yes --json'],
  'secrets ingest': ['aivault secrets ingest STRIPE_SECRET_KEY', 'aivault secrets ingest GITHUB_TOKEN --timeout 120 --json'],
  'secrets import': ['aivault secrets import --file .env', 'cat prod.env | aivault secrets import --file - --scope workspace:acme --overwrite --json'],
  'secrets attach-group': ['aivault secrets attach-group OPENAI_API_KEY --workspace-id acme --group-id ml', 'aivault secrets attach-group --id 3f9c… --workspace-id acme --group-id ml --json'],
  'secrets detach-group': ['aivault secrets detach-group OPENAI_API_KEY --workspace-id acme --group-id ml'],
  'secrets update': ['aivault secrets update MY_TOKEN --name BILLING_TOKEN', 'aivault secrets update --id 3f9c… --alias billing --alias invoices', 'aivault secrets update billing --clear-aliases --json'],
  'secrets validate': ['aivault secrets validate OPENAI_API_KEY', 'aivault secrets validate SLACK_BOT_TOKEN --json'],
  'secrets compare': ['printf %s "$CANDIDATE" | aivault secrets compare OPENAI_API_KEY'],
  'secrets prove': ['aivault secrets prove OPENAI_API_KEY --challenge "$NONCE"'],
  'secrets verify': ['aivault secrets verify', 'aivault secrets verify OPENAI_API_KEY --json'],
  registry: ['aivault registry list', 'aivault registry show openai'],
  'registry list': ['aivault registry list', 'aivault registry list --json'],
  'registry show': ['aivault registry show github', 'aivault registry show stripe --json'],
  'registry validate': ['aivault registry validate my-provider.json', 'aivault registry validate registry/*.json --json'],
  credential: ['aivault credential list', 'aivault credential describe openai'],
  'credential create': [
    'aivault credential create notes --provider notes --secret-ref vault:secret:… --auth header --header-name authorization --value-template "Bearer {{secret}}" --host api.notes.example',
    'aivault credential create weather --provider weather --secret-ref vault:secret:… --auth query --param-name appid --host api.openweathermap.org',
  ],
  'credential update': [
    'aivault credential update notes --host api.notes.example --host api2.notes.example',
    'aivault credential update notes --secret-ref vault:secret:…',
    'aivault credential update notes --allow-private-network --no-allow-http',
  ],
  'credential list': ['aivault credential list', 'aivault credential list --json'],
  'credential describe': ['aivault credential describe openai'],
  'credential delete': ['aivault credential delete notes'],
  capability: ['aivault capability list', 'aivault capability describe openai/chat-completions'],
  'capability create': ['aivault capability create notes/read --provider notes --credential notes --method GET --path /v1/notes', 'aivault capability create notes/write --provider notes --credential notes --method POST --method PATCH --path /v1/notes --max-request-bytes 65536', 'aivault capability create notes/events --provider notes --credential notes --method GET --path /v1/events --websocket'],
  'capability update': ['aivault capability update notes/read --method GET --method HEAD', 'aivault capability update notes/write --path /v1/notes --path /v1/tags --timeout-ms default', 'aivault capability update notes/read --all-credential-hosts --no-websocket'],
  'capability list': ['aivault capability list', 'aivault capability list --json'],
  'capability describe': ['aivault capability describe github/issues'],
  'capability delete': ['aivault capability delete notes/read'],
  'capability policy': ['aivault capability policy set openai/chat-completions --rate-limit-per-minute 30', 'aivault capability policy clear openai/chat-completions'],
  'capability policy set': [
    'aivault capability policy set openai/chat-completions --rate-limit-per-minute 30 --max-request-body-bytes 65536',
    'aivault capability policy set github/issues --response-block "acme-internal-" --response-block "ops@acme.example"',
  ],
  'capability policy clear': ['aivault capability policy clear github/issues'],
  endpoint: ['aivault endpoint list', 'aivault endpoint set openai --map api.openai.com=llm-gateway.internal:8443'],
  'endpoint set': ['aivault endpoint set supabase --tenant myproject.supabase.co', 'aivault endpoint set openai --map api.openai.com=llm-gateway.internal:8443', 'aivault endpoint set spotify --map api.spotify.com=127.0.0.1:9000 --token-endpoint http://127.0.0.1:9000/api/token --allow-http --allow-private-network'],
  'endpoint list': ['aivault endpoint list --json'],
  'endpoint clear': ['aivault endpoint clear openai'],
  flow: ['aivault flow list', 'aivault flow run github/exchange --body "{\\"code\\":\\"…\\"}"'],
  'flow create': [
    'aivault flow create github/exchange --mode acquire_secret --target https://github.com/login/oauth/access_token --kind oauth_token_response.access_token --store-alias GITHUB_TOKEN',
    'aivault flow create notes/ping --mode send_secret --target https://api.notes.example/v1/ping --credential notes --visibility shape_only',
  ],
  'flow list': ['aivault flow list --json'],
  'flow describe': ['aivault flow describe github/exchange'],
  'flow delete': ['aivault flow delete github/exchange'],
  'flow run': ['aivault flow run github/exchange --body-file exchange.json --content-type application/json'],
  invoke: [
    'aivault invoke openai/chat-completions --method POST --path /v1/chat/completions --body-file request.json',
    'aivault invoke github/issues --path /repos/acme/app/issues --query state=open --json',
    'AIVAULT_SOCKET=~/.aivault/aivault.sock AIVAULT_AGENT_TOKEN=avt_… aivault invoke openai/models --path /v1/models',
    'aivault invoke openai/chat-completions --method POST --path /v1/chat/completions --body-file stream-request.json --stream',
    'aivault invoke openai/files --method POST --path /v1/files --multipart-field purpose=fine-tune --multipart-file file=train.jsonl',
    'aivault invoke openai/models --path /v1/models --workspace-id acme --group-id ml',
  ],
  json: ['aivault json github/issues --path /repos/acme/app/issues --query state=open', 'aivault json openai/models --path /v1/models'],
  markdown: [
    'aivault markdown github/issues --path /repos/acme/app/issues --exclude-field user --wrap-field body --namespace issues',
    'aivault markdown stripe/customers --path /v1/customers --exclude-field data.metadata',
  ],
  oauth: ['printf %s "$REFRESH_TOKEN" | aivault oauth login spotify --client-id "$SPOTIFY_CLIENT_ID" --client-secret-file client-secret.txt'],
  'oauth login': ['printf %s "$REFRESH_TOKEN" | aivault oauth login spotify --client-id "$SPOTIFY_CLIENT_ID" --client-secret-file client-secret.txt', 'aivault oauth login google --client-id 123.apps.googleusercontent.com --client-secret-file client-secret.txt'],
  agent: ['aivault agent create my-bot', 'aivault agent list'],
  'agent create': ['aivault agent create my-bot', 'aivault agent create signer --public-key signer.pub --json', 'aivault agent create ml-bot --workspace-id acme --group-id ml'],
  'agent context': ['aivault agent context my-bot --workspace-id acme --group-id ml', 'aivault agent context my-bot --workspace-id acme', 'aivault agent context my-bot --global'],
  'agent list': ['aivault agent list --json'],
  'agent describe': ['aivault agent describe my-bot'],
  'agent revoke': ['aivault agent revoke my-bot'],
  grant: ['aivault grant my-bot openai/chat-completions openai/embeddings', 'aivault grant my-bot github/* --methods GET --expires 7d --rate 60/min', 'aivault grant my-bot stripe/refunds --approve each', 'aivault grant list my-bot'],
  'revoke-grant': ['aivault revoke-grant my-bot openai/chat-completions', 'aivault revoke-grant my-bot github/*'],
  approvals: ['aivault approvals', 'aivault approvals approve apr_3kq…', 'aivault approvals deny apr_3kq…'],
  'approvals list': ['aivault approvals list --all --json'],
  'approvals approve': ['aivault approvals approve apr_3kq…'],
  'approvals deny': ['aivault approvals deny apr_3kq…'],
  owner: ['aivault owner list', 'aivault owner add laptop --public-key laptop.pub'],
  'owner add': ['aivault owner add laptop --public-key laptop.pub'],
  'owner list': ['aivault owner list --json'],
  'owner remove': ['aivault owner remove laptop'],
  audit: ['aivault audit list --since 1h', 'aivault audit verify'],
  'audit list': ['aivault audit list', 'aivault audit list --capability openai/chat-completions --since 2026-11-01 --limit 50 --json'],
  'audit verify': ['aivault audit verify', 'aivault audit verify --json', 'aivault audit verify --against head.json'],
  'audit head': ['aivault audit head > head.json'],
  'audit export': ['aivault audit export --format jsonl > audit.jsonl'],
  serve: ['aivault serve', 'aivault serve --listen 127.0.0.1:8787 --audit-durability crash-safe', 'aivault serve --socket-group agents --approval-command \'notify-send "aivault: approve $AIVAULT_APPROVAL_ID"\''],
  setup: ['aivault setup systemd --daemon-user aivault', 'aivault setup agent-access --agent-user claude --dry-run'],
  'setup systemd': ['aivault setup systemd --daemon-user aivault', 'sudo aivault setup systemd --daemon-user aivault --listen 127.0.0.1:8787 --install'],
  'setup agent-access': ['aivault setup agent-access --agent-user claude --dry-run', 'sudo aivault setup agent-access --agent-user claude'],
  'rotate-master': ['aivault rotate-master --new-key', 'AIVAULT_NEW_PASSPHRASE=… aivault rotate-master --new-passphrase --json', 'AIVAULT_NEW_MASTER_KEY="$(openssl rand -base64 32)" aivault rotate-master --new-env-key'],
  mcp: ['aivault mcp --agent my-bot', 'AIVAULT_SOCKET=~/.aivault/aivault.sock AIVAULT_AGENT_TOKEN=avt_… aivault mcp'],
  status: ['aivault status', 'aivault status --json'],
  explain: ['aivault explain PATH_NOT_ALLOWED', 'aivault explain APPROVAL_TIMEOUT --json'],
  run: ['aivault run --agent my-bot -- python my_tool.py', 'aivault run --agent my-bot --url http://127.0.0.1:8787 -- node agent.js'],
  completion: ['eval "$(aivault completion bash)"', 'aivault completion zsh > "${fpath[1]}/_aivault"', 'aivault completion fish > ~/.config/fish/completions/aivault.fish'],
};

export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Adds an Examples section to each command's help that has examples. */
export function attachExamples(program: Command): void {
  const visit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      const examples = EXAMPLES[commandPath(sub)];
      if (examples) sub.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
      visit(sub);
    }
  };
  visit(program);
}
