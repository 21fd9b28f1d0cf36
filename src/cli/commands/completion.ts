// `aivault completion bash|zsh|fish`: completion scripts generated from the command tree,
// so they never fall out of step with the commands.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { NameKind } from '../completion-names.ts';

/** Names an argument takes from the vault, by the argument's name. */
const BY_ARGUMENT: Readonly<Record<string, NameKind>> = { secret: 'secrets', secrets: 'secrets', capability: 'capabilities', capabilities: 'capabilities', agent: 'agents', provider: 'providers' };
/** And by the option that takes it. */
const BY_OPTION: Readonly<Record<string, NameKind>> = { '--credential': 'credentials', '--provider': 'providers', '--agent': 'agents', '--capability': 'capabilities' };
/** An argument named `name` or `id` under these commands names one of theirs (but for create). */
const BY_COMMAND: Readonly<Record<string, NameKind>> = { credential: 'credentials', capability: 'capabilities' };

interface Node {
  subcommands: string[];
  options: string[];
  /** The options that take a value, and the names each takes, if from the vault. */
  valued: Map<string, NameKind | '-'>;
  /** Each positional argument's names from the vault ('-': none); a variadic last one ends in `...`. */
  args: string[];
}

function tree(program: Command): Map<string, Node> {
  const out = new Map<string, Node>();
  const walk = (cmd: Command, path: string) => {
    const top = path.split(' ')[0]!;
    out.set(path, {
      subcommands: cmd.commands.map((c) => c.name()),
      options: cmd.options.map((o) => o.long).filter((l): l is string => Boolean(l)),
      valued: new Map(cmd.options.filter((o) => o.long && (o.required || o.optional)).map((o) => [o.long!, BY_OPTION[o.long!] ?? '-'])),
      args: cmd.registeredArguments.map((a) => `${BY_ARGUMENT[a.name()] ?? ((a.name() === 'name' || a.name() === 'id') && cmd.name() !== 'create' ? BY_COMMAND[top] : undefined) ?? '-'}${a.variadic ? '...' : ''}`),
    });
    for (const c of cmd.commands) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return out;
}

function bash(t: ReturnType<typeof tree>): string {
  const cases = [...t.entries()].map(([path, v]) => `    "${path}") words="${[...v.subcommands, ...v.options].join(' ')}"; args="${v.args.join(' ')}"; valued="${[...v.valued].map(([o, k]) => `${o}=${k}`).join(' ')}" ;;`).join('\n');
  const known = [...t.keys()].filter((k) => k !== '').map((k) => `"${k}"`).join('|');
  return `# aivault bash completion: eval "$(aivault completion bash)"
_aivault_known() { case "$1" in ${known}) return 0 ;; esac; return 1; }
_aivault() {
  local cur prev path="" cand w i words="" args="" valued="" kind="" npos=0 skip=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # Words that name a (sub)command extend the path; the others are options, their values, or arguments.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$w" in -*) case " $valued " in *" $w="*) skip=1 ;; esac; continue ;; esac
    if [ -n "$path" ]; then cand="$path $w"; else cand="$w"; fi
    if _aivault_known "$cand"; then path="$cand"; npos=0; _aivault_node "$path"; else npos=$((npos + 1)); fi
  done
  _aivault_node "$path"
  # A value of an option, or an argument, that names something in the vault: ask it (names only, no key).
  valued=" $valued "
  case "$valued" in *" $prev="*) kind="\${valued##*" $prev="}"; kind="\${kind%% *}" ;; esac
  if [ -z "$kind" ] && [ "\${cur#-}" = "$cur" ]; then
    set -- $args
    # Past the last argument, a variadic one (NAME...) takes the rest.
    if [ "$npos" -ge $# ] && [ $# -gt 0 ] && [ "\${!#%...}" != "\${!#}" ]; then npos=$(($# - 1)); fi
    [ "$npos" -lt $# ] && shift "$npos" && kind="\${1%...}"
  fi
  if [ -n "$kind" ] && [ "$kind" != "-" ]; then words="$(aivault completion names "$kind" 2>/dev/null)"; fi
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
_aivault_node() {
  words=""; args=""; valued=""
  case "$1" in
${cases}
  esac
}
complete -F _aivault aivault
`;
}

function zsh(t: ReturnType<typeof tree>): string {
  return `#compdef aivault
# aivault zsh completion: eval "$(aivault completion zsh)"
autoload -U bashcompinit && bashcompinit
${bash(t)}`;
}

function fish(t: ReturnType<typeof tree>): string {
  const lines = ['# aivault fish completion: aivault completion fish | source', 'complete -c aivault -f'];
  for (const [path, v] of t) {
    const cond = path === '' ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${path.split(' ').at(-1)}`;
    for (const s of v.subcommands) lines.push(`complete -c aivault -n '${cond}' -a '${s}'`);
    for (const o of v.options) {
      const kind = v.valued.get(o);
      lines.push(`complete -c aivault -n '${cond}' -l '${o.replace(/^--/, '')}'${kind && kind !== '-' ? ` -r -a '(aivault completion names ${kind} 2>/dev/null)'` : ''}`);
    }
    const first = v.args[0]?.replace(/\.\.\.$/, '');
    if (first && first !== '-' && path !== '') lines.push(`complete -c aivault -n '${cond}' -a '(aivault completion names ${first} 2>/dev/null)'`);
  }
  return lines.join('\n') + '\n';
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .argument('<shell>', 'bash, zsh or fish; or `names KIND`, what the scripts run to complete names from the vault (capabilities, agents, secrets, credentials, providers; read without the master key)')
    .argument('[kind]')
    .description('print a shell completion script (e.g. eval "$(aivault completion bash)")')
    .action(async (shell: string) => {
      // main.ts answers `names` before the command tree loads; this is the same, for callers of cli.ts.
      if (shell === 'names') return (await import('../completion-names.ts')).printCompletionNames(process.argv);
      const t = tree(program);
      const script = shell === 'bash' ? bash(t) : shell === 'zsh' ? zsh(t) : shell === 'fish' ? fish(t) : undefined;
      if (!script) throw new AivaultError('INVALID_ARGUMENT', 'completion supports bash, zsh and fish');
      process.stdout.write(script);
    });
}
