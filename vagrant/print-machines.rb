# Prints the machines vagrant/Vagrantfile defines, as JSON, without Vagrant: the file is loaded
# with a stub `Vagrant.configure` that records what it is told (test/vagrant.test.ts compares
# the result with inventories/vagrant.yml).
#   ruby vagrant/print-machines.rb [path/to/Vagrantfile]
require "json"

class PghaRecorder
  def initialize(log, ctx = {}, path = [])
    @log, @ctx, @path = log, ctx, path
  end

  def method_missing(name, *args, **kw, &blk)
    path = @path + [name.to_s]
    ctx = @ctx
    ctx = ctx.merge(machine: args[0]) if name == :define
    ctx = ctx.merge(provider: args[0]) if name == :provider
    @log << { ctx: ctx, call: path.join("."), args: args, kw: kw }
    sub = PghaRecorder.new(@log, ctx, path)
    blk&.call(sub)
    sub
  end

  def respond_to_missing?(*) = true
end

module Vagrant
  LOG = []
  def self.configure(_version)
    yield PghaRecorder.new(LOG)
  end
end

load(ARGV[0] || File.join(__dir__, "Vagrantfile"))

calls = Vagrant::LOG
box = calls.find { |c| c[:call] == "vm.box=" }&.dig(:args, 0)
names = calls.select { |c| c[:call] == "vm.define" }.map { |c| c[:args][0] }
machines = names.map do |n|
  mine = calls.select { |c| c[:ctx][:machine] == n }
  memory = mine.select { |c| c[:call].end_with?(".memory=") }.to_h { |c| [c[:ctx][:provider], c[:args][0]] }
  provision = mine.find { |c| c[:call].end_with?("vm.provision") }
  {
    name: n,
    hostname: mine.find { |c| c[:call].end_with?("vm.hostname=") }&.dig(:args, 0),
    addresses: mine.select { |c| c[:call].end_with?("vm.network") && c[:args][0] == "private_network" }.map { |c| c[:kw][:ip] },
    memory: memory,
    provision: provision && { type: provision[:args][0], path: provision[:kw][:path], args: provision[:kw][:args] },
  }
end
puts JSON.pretty_generate({ box: box, machines: machines })
