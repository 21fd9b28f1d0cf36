// `aivault completion bash|zsh|fish`: completion scripts generated from the command tree,
// so they never fall out of step with the commands.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';

function tree(program: Command): Map<string, { subcommands: string[]; options: string[] }> {
  const out = new Map<string, { subcommands: string[]; options: string[] }>();
  const walk = (cmd: Command, path: string) => {
    out.set(path, { subcommands: cmd.commands.map((c) => c.name()), options: cmd.options.map((o) => o.long).filter((l): l is string => Boolean(l)) });
    for (const c of cmd.commands) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return out;
}

function bash(t: ReturnType<typeof tree>): string {
  const cases = [...t.entries()].map(([path, v]) => `    "${path}") words="${[...v.subcommands, ...v.options].join(' ')}" ;;`).join('\n');
  const known = [...t.keys()].filter((k) => k !== '').map((k) => `"${k}"`).join('|');
  return `# aivault bash completion: eval "$(aivault completion bash)"
_aivault_known() { case "$1" in ${known}) return 0 ;; esac; return 1; }
_aivault() {
  local cur path="" cand w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  # Only words that name a (sub)command extend the path; arguments and options do not.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if [ -n "$path" ]; then cand="$path $w"; else cand="$w"; fi
    _aivault_known "$cand" && path="$cand"
  done
  local words=""
  case "$path" in
${cases}
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
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
    for (const o of v.options) lines.push(`complete -c aivault -n '${cond}' -l '${o.replace(/^--/, '')}'`);
  }
  return lines.join('\n') + '\n';
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .argument('<shell>', 'bash, zsh or fish')
    .description('print a shell completion script (e.g. eval "$(aivault completion bash)")')
    .action((shell: string) => {
      const t = tree(program);
      const script = shell === 'bash' ? bash(t) : shell === 'zsh' ? zsh(t) : shell === 'fish' ? fish(t) : undefined;
      if (!script) throw new AivaultError('INVALID_ARGUMENT', 'completion supports bash, zsh and fish');
      process.stdout.write(script);
    });
}
